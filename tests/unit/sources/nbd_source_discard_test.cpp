#include <gtest/gtest.h>

#include "tests/unit/sources/source_test_support.h"

namespace hydrate::test {
namespace {

class NbdSourceDiscard : public SourceTest {};

// discard_source_after_commit: the source is opened writable and trims reach the server (the
// file plugin punches holes, which then read as zero).
TEST_F(NbdSourceDiscard, TrimsWhenOpenedWritable) {
  const std::string image = dir_.file("source.img");
  const auto data = random_bytes(4u << 20, 11);
  {
    std::ofstream out(image, std::ios::binary);
    out.write(reinterpret_cast<const char*>(data.data()),
              static_cast<std::streamsize>(data.size()));
  }
  NbdkitServer server(dir_.path() / "srv", {"file", image});
  SourceOptions options = test_options();
  options.writable = true;
  auto source = make_nbd_source(server.uri(), options);
  open_or_fail(*source);
  EXPECT_TRUE(source->can_discard());
  IoResult r = run(source->discard(1u << 20, 1u << 20));
  ASSERT_TRUE(r.ok()) << r.message;
  std::vector<std::byte> buffer(4u << 20);
  ASSERT_TRUE(run(source->read(0, buffer)).ok());
  EXPECT_TRUE(all_zero(std::span(buffer).subspan(1u << 20, 1u << 20)));
  EXPECT_TRUE(std::equal(buffer.begin(), buffer.begin() + (1 << 20), data.begin()));
  EXPECT_TRUE(std::equal(buffer.begin() + (2 << 20), buffer.end(), data.begin() + (2 << 20)));
  run(source->close());
}

// The default: read-only. Nothing is sent; the error says why.
TEST_F(NbdSourceDiscard, RefusedUnlessWritable) {
  NbdkitServer server(dir_.path(), {"memory", "16M"});
  auto source = make_nbd_source(server.uri());
  open_or_fail(*source);
  EXPECT_FALSE(source->can_discard());
  IoResult r = run(source->discard(0, 4096));
  EXPECT_EQ(r.error, EPERM);
  EXPECT_NE(r.message.find("not opened writable"), std::string::npos) << r.message;
  run(source->close());

  // Writable, but the server is read-only (-r): still refused, for that reason.
  NbdkitServer readonly(dir_.path() / "ro", {"-r", "memory", "16M"});
  SourceOptions options = test_options();
  options.writable = true;
  auto other = make_nbd_source(readonly.uri(), options);
  open_or_fail(*other);
  EXPECT_FALSE(other->can_discard());
  EXPECT_EQ(run(other->discard(0, 4096)).error, EPERM);
  run(other->close());
}

}  // namespace
}  // namespace hydrate::test
