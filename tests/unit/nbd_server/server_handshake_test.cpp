// Handshake variants driven by libnbd, a real client.
#include <gtest/gtest.h>

#include <cerrno>
#include <map>

#include "tests/unit/nbd_server/test_server.h"

namespace hydrate::nbd::testing {
namespace {

class Handshake : public ::testing::Test {
 protected:
  void SetUp() override {
    auto disk = make_info("disk", 8 << 20);
    disk.min_block = 512;
    disk.preferred_block = 4096;
    disk.max_block = 1 << 20;
    disk_ = server_.add(disk, true);
    auto ro = make_info("ro", 1 << 20, true);
    ro.description = "";
    ro.can_multi_conn = false;
    ro_ = server_.add(ro);
    server_.start();
  }
  TestServer server_;
  std::shared_ptr<MemoryExport> disk_, ro_;
};

TEST_F(Handshake, GoToTheDefaultExportWithStructuredReplies) {
  NbdHandle h;
  ASSERT_EQ(nbd_connect_uri(h, server_.uri().c_str()), 0) << nbd_error_text();
  EXPECT_STREQ(nbd_get_protocol(h), "newstyle-fixed");
  EXPECT_EQ(nbd_get_size(h), 8 << 20);
  EXPECT_EQ(nbd_get_structured_replies_negotiated(h), 1);
  EXPECT_EQ(nbd_is_read_only(h), 0);
  EXPECT_EQ(nbd_can_flush(h), 1);
  EXPECT_EQ(nbd_can_fua(h), 1);
  EXPECT_EQ(nbd_can_trim(h), 1);
  EXPECT_EQ(nbd_can_zero(h), 1);
  EXPECT_EQ(nbd_can_fast_zero(h), 1);
  EXPECT_EQ(nbd_can_df(h), 1);
  EXPECT_EQ(nbd_can_multi_conn(h), 1);
  EXPECT_EQ(nbd_can_cache(h), 1);
  EXPECT_EQ(nbd_is_rotational(h), 0);
  EXPECT_EQ(nbd_get_block_size(h, LIBNBD_SIZE_MINIMUM), 512);
  EXPECT_EQ(nbd_get_block_size(h, LIBNBD_SIZE_PREFERRED), 4096);
  EXPECT_EQ(nbd_get_block_size(h, LIBNBD_SIZE_MAXIMUM), 1 << 20);
  EXPECT_EQ(nbd_shutdown(h, 0), 0);
}

TEST_F(Handshake, StructuredRepliesCanBeDeclined) {
  NbdHandle h;
  nbd_set_request_structured_replies(h, false);
  ASSERT_EQ(nbd_connect_uri(h, server_.uri("disk").c_str()), 0) << nbd_error_text();
  EXPECT_EQ(nbd_get_structured_replies_negotiated(h), 0);
  EXPECT_EQ(nbd_can_df(h), 0);  // DF needs structured replies
  auto data = pattern(4096, 1);
  ASSERT_EQ(nbd_pwrite(h, data.data(), data.size(), 4096, 0), 0) << nbd_error_text();
  std::vector<std::byte> back(4096);
  ASSERT_EQ(nbd_pread(h, back.data(), back.size(), 4096, 0), 0) << nbd_error_text();
  EXPECT_EQ(back, data);
}

TEST_F(Handshake, ReadOnlyExportFlags) {
  NbdHandle h;
  ASSERT_EQ(nbd_connect_uri(h, server_.uri("ro").c_str()), 0) << nbd_error_text();
  EXPECT_EQ(nbd_is_read_only(h), 1);
  EXPECT_EQ(nbd_can_trim(h), 0);
  EXPECT_EQ(nbd_can_zero(h), 0);
  EXPECT_EQ(nbd_can_multi_conn(h), 0);
}

int collect_export(void* user, const char* name, const char* description) {
  (*static_cast<std::map<std::string, std::string>*>(user))[name] = description;
  return 0;
}

TEST_F(Handshake, ListShowsNamesAndDescriptions) {
  NbdHandle h;
  nbd_set_opt_mode(h, true);
  ASSERT_EQ(nbd_connect_unix(h, server_.socket().c_str()), 0) << nbd_error_text();
  std::map<std::string, std::string> exports;
  ASSERT_EQ(nbd_opt_list(h, (nbd_list_callback){.callback = collect_export, .user_data = &exports}),
            2)
      << nbd_error_text();
  EXPECT_EQ(exports.size(), 2u);
  EXPECT_EQ(exports["disk"], "test export disk");
  EXPECT_EQ(exports["ro"], "");
  EXPECT_EQ(nbd_opt_abort(h), 0);
}

TEST_F(Handshake, InfoReportsAnExportWithoutEnteringIt) {
  NbdHandle h;
  nbd_set_opt_mode(h, true);
  nbd_set_full_info(h, true);
  ASSERT_EQ(nbd_connect_unix(h, server_.socket().c_str()), 0) << nbd_error_text();
  ASSERT_EQ(nbd_set_export_name(h, ""), 0);
  ASSERT_EQ(nbd_opt_info(h), 0) << nbd_error_text();
  EXPECT_EQ(nbd_get_size(h), 8 << 20);
  char* canonical = nbd_get_canonical_export_name(h);
  ASSERT_NE(canonical, nullptr) << nbd_error_text();
  EXPECT_STREQ(canonical, "disk");  // the empty name resolved to the default export
  free(canonical);
  char* description = nbd_get_export_description(h);
  ASSERT_NE(description, nullptr) << nbd_error_text();
  EXPECT_STREQ(description, "test export disk");
  free(description);

  // An unknown export is an error reply, and the handshake carries on.
  ASSERT_EQ(nbd_set_export_name(h, "nope"), 0);
  EXPECT_EQ(nbd_opt_info(h), -1);
  EXPECT_EQ(nbd_get_errno(), ENOENT) << nbd_error_text();  // NBD_REP_ERR_UNKNOWN

  ASSERT_EQ(nbd_set_export_name(h, "ro"), 0);
  ASSERT_EQ(nbd_opt_go(h), 0) << nbd_error_text();
  EXPECT_EQ(nbd_get_size(h), 1 << 20);
  EXPECT_EQ(nbd_is_read_only(h), 1);
}

TEST_F(Handshake, GoToUnknownExportFails) {
  NbdHandle h;
  EXPECT_EQ(nbd_connect_uri(h, server_.uri("missing").c_str()), -1);
}

TEST_F(Handshake, OldStyleExportNameOption) {
  // Without fixed newstyle libnbd can only use NBD_OPT_EXPORT_NAME.
  NbdHandle h;
  nbd_set_handshake_flags(h, 0);
  ASSERT_EQ(nbd_connect_uri(h, server_.uri("disk").c_str()), 0) << nbd_error_text();
  EXPECT_STREQ(nbd_get_protocol(h), "newstyle");
  EXPECT_EQ(nbd_get_size(h), 8 << 20);
  std::vector<std::byte> buf(512);
  EXPECT_EQ(nbd_pread(h, buf.data(), buf.size(), 0, 0), 0) << nbd_error_text();
}

int collect_name(void* user, const char* name) {
  static_cast<std::vector<std::string>*>(user)->push_back(name);
  return 0;
}

TEST_F(Handshake, MetaContextsAreListedAndSelected) {
  NbdHandle h;
  nbd_set_opt_mode(h, true);
  ASSERT_EQ(nbd_connect_uri(h, server_.uri("disk").c_str()), 0) << nbd_error_text();
  std::vector<std::string> names;
  // No queries: everything.
  ASSERT_EQ(nbd_opt_list_meta_context(
                h, (nbd_context_callback){.callback = collect_name, .user_data = &names}),
            2)
      << nbd_error_text();
  EXPECT_EQ(names, (std::vector<std::string>{"base:allocation", "hydrate:state"}));
  // A namespace query lists that namespace only; unknown namespaces are ignored.
  names.clear();
  nbd_add_meta_context(h, "base:");
  nbd_add_meta_context(h, "x-nobody:thing");
  ASSERT_EQ(nbd_opt_list_meta_context(
                h, (nbd_context_callback){.callback = collect_name, .user_data = &names}),
            1)
      << nbd_error_text();
  EXPECT_EQ(names, (std::vector<std::string>{"base:allocation"}));

  nbd_clear_meta_contexts(h);
  nbd_add_meta_context(h, "base:allocation");
  nbd_add_meta_context(h, "hydrate:state");
  nbd_add_meta_context(h, "x-nobody:thing");
  ASSERT_EQ(nbd_opt_go(h), 0) << nbd_error_text();
  EXPECT_EQ(nbd_can_meta_context(h, "base:allocation"), 1);
  EXPECT_EQ(nbd_can_meta_context(h, "hydrate:state"), 1);
  EXPECT_EQ(nbd_can_meta_context(h, "x-nobody:thing"), 0);
}

TEST_F(Handshake, MetaContextsNeedStructuredReplies) {
  NbdHandle h;
  nbd_set_opt_mode(h, true);
  nbd_set_request_structured_replies(h, false);
  ASSERT_EQ(nbd_connect_uri(h, server_.uri("disk").c_str()), 0) << nbd_error_text();
  std::vector<std::string> names;
  EXPECT_EQ(nbd_opt_list_meta_context(
                h, (nbd_context_callback){.callback = collect_name, .user_data = &names}),
            -1);
  EXPECT_TRUE(names.empty());
  EXPECT_EQ(nbd_opt_abort(h), 0);
}

TEST(HandshakeDefaults, NoDefaultExportAmongSeveral) {
  TestServer server;
  server.add(make_info("a", 1 << 20));
  server.add(make_info("b", 1 << 20));
  server.start();
  NbdHandle h;
  EXPECT_EQ(nbd_connect_uri(h, server.uri().c_str()), -1);
  NbdHandle h2;
  EXPECT_EQ(nbd_connect_uri(h2, server.uri("b").c_str()), 0) << nbd_error_text();
}

TEST(HandshakeDefaults, SingleExportIsTheDefault) {
  TestServer server;
  server.add(make_info("only", 1 << 20));
  server.start();
  NbdHandle h;
  ASSERT_EQ(nbd_connect_uri(h, server.uri().c_str()), 0) << nbd_error_text();
  EXPECT_EQ(nbd_get_size(h), 1 << 20);
}

}  // namespace
}  // namespace hydrate::nbd::testing
