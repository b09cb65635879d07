// Byte-level conversations for what a well-behaved client library will not send.
#include <gtest/gtest.h>

#include "nbd-server/protocol.h"
#include "nbd-server/wire.h"
#include "tests/unit/nbd_server/raw_client.h"
#include "tests/unit/nbd_server/test_server.h"

namespace hydrate::nbd::testing {
namespace {

using namespace proto;

class RawProtocol : public ::testing::Test {
 protected:
  void SetUp() override {
    disk_ = server_.add(make_info("disk", 1 << 20), true);
    server_.start();
  }
  // Greeting answered with fixed newstyle + NO_ZEROES.
  std::unique_ptr<RawClient> haggling() {
    auto c = std::make_unique<RawClient>(server_.socket());
    auto flags = c->greeting();
    EXPECT_EQ(flags, kFlagFixedNewstyle | kFlagNoZeroes);
    EXPECT_TRUE(c->send_client_flags(kClientFlagFixedNewstyle | kClientFlagNoZeroes));
    return c;
  }
  // The option haggling still works: LIST lists the export.
  void still_haggling(RawClient& c) {
    ASSERT_TRUE(c.send_option(kOptList));
    auto r = c.read_option_reply();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->type, kRepServer);
    r = c.read_option_reply();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->type, kRepAck);
  }
  // A READ answered correctly: the connection is in sync.
  void still_in_sync(RawClient& c, bool structured) {
    ASSERT_TRUE(c.send_request(0, kCmdRead, 777, 0, 512));
    auto r = c.read_reply();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->cookie, 777u);
    EXPECT_EQ(r->error, 0u);
    if (!structured) {
      ASSERT_TRUE(c.recv(512));
    } else {
      EXPECT_EQ(r->type, kReplyTypeOffsetData);
      EXPECT_EQ(r->payload.size(), 8u + 512);
    }
  }
  TestServer server_{[] {
    ServerSettings s;
    s.handshake_timeout = std::chrono::milliseconds(20000);
    return s;
  }()};
  std::shared_ptr<MemoryExport> disk_;
};

TEST_F(RawProtocol, UnknownOptionIsUnsupportedAndHagglingContinues) {
  auto c = haggling();
  ASSERT_TRUE(c->send_option(4242, bytes("whatever")));
  auto r = c->read_option_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->option, 4242u);
  EXPECT_EQ(r->type, kRepErrUnsup);
  still_haggling(*c);
}

TEST_F(RawProtocol, TruncatedAndOverlongOptionPayloadsAreInvalid) {
  auto c = haggling();
  // INFO whose name length points past the payload.
  ASSERT_TRUE(c->send_option(kOptInfo, cat({be32(50), bytes("disk"), be16(0)})));
  auto r = c->read_option_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, kRepErrInvalid);
  std::string message(reinterpret_cast<const char*>(r->data.data()), r->data.size());
  EXPECT_NE(message.find("runs past the payload"), std::string::npos) << message;
  // GO with bytes after the information requests.
  ASSERT_TRUE(c->send_option(kOptGo, cat({info_payload("disk"), bytes("junk")})));
  r = c->read_option_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, kRepErrInvalid);
  // LIST and STRUCTURED_REPLY carry no data.
  ASSERT_TRUE(c->send_option(kOptList, bytes("x")));
  r = c->read_option_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, kRepErrInvalid);
  ASSERT_TRUE(c->send_option(kOptStructuredReply, bytes("x")));
  r = c->read_option_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, kRepErrInvalid);
  still_haggling(*c);
}

TEST_F(RawProtocol, OversizedOptionIsSkippedWithTooBig) {
  auto c = haggling();
  std::vector<std::byte> big(200 * 1024, std::byte{'a'});
  ASSERT_TRUE(c->send_option(kOptInfo, big));
  auto r = c->read_option_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, kRepErrTooBig);
  still_haggling(*c);
}

TEST_F(RawProtocol, AbsurdOptionLengthDisconnects) {
  auto c = haggling();
  ASSERT_TRUE(c->send_option_header(kOptInfo, 0x7fffffff));
  EXPECT_TRUE(c->closed_by_server());
}

TEST_F(RawProtocol, MetaContextOptionsBeforeStructuredRepliesAreInvalid) {
  auto c = haggling();
  ASSERT_TRUE(c->send_option(kOptSetMetaContext, cat({be32(4), bytes("disk"), be32(0)})));
  auto r = c->read_option_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, kRepErrInvalid);
  still_haggling(*c);
}

TEST_F(RawProtocol, SetMetaContextRepliesWithIdsAndMalformedQueriesAreInvalid) {
  auto c = haggling();
  ASSERT_TRUE(c->send_option(kOptStructuredReply));
  ASSERT_EQ(c->read_option_reply()->type, kRepAck);
  auto query = [](const std::string& q) {
    return cat({be32(static_cast<uint32_t>(q.size())), bytes(q)});
  };
  ASSERT_TRUE(c->send_option(
      kOptSetMetaContext,
      cat({be32(4), bytes("disk"), be32(2), query("hydrate:state"), query("base:allocation")})));
  std::vector<uint32_t> ids;
  for (;;) {
    auto r = c->read_option_reply();
    ASSERT_TRUE(r);
    if (r->type == kRepAck) break;
    ASSERT_EQ(r->type, kRepMetaContext);
    ids.push_back(wire::load_u32(r->data.data()));
  }
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_NE(ids[0], ids[1]);
  ASSERT_TRUE(c->send_option(kOptSetMetaContext,
                             cat({be32(4), bytes("disk"), be32(1), query("nonamespace")})));
  EXPECT_EQ(c->read_option_reply()->type, kRepErrInvalid);
  // Unknown export.
  ASSERT_TRUE(c->send_option(kOptListMetaContext, cat({be32(3), bytes("zzz"), be32(0)})));
  EXPECT_EQ(c->read_option_reply()->type, kRepErrUnknown);
}

TEST_F(RawProtocol, StartTlsWithoutTlsConfiguredIsPolicy) {
  auto c = haggling();
  ASSERT_TRUE(c->send_option(kOptStartTls));
  auto r = c->read_option_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, kRepErrPolicy);
  still_haggling(*c);
}

TEST_F(RawProtocol, AbortIsAcknowledgedThenClosed) {
  auto c = haggling();
  ASSERT_TRUE(c->send_option(kOptAbort));
  auto r = c->read_option_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, kRepAck);
  EXPECT_TRUE(c->closed_by_server());
}

TEST_F(RawProtocol, UnknownClientFlagsDisconnect) {
  RawClient c(server_.socket());
  ASSERT_TRUE(c.greeting());
  ASSERT_TRUE(c.send_client_flags(kClientFlagFixedNewstyle | 0x100));
  EXPECT_TRUE(c.closed_by_server());
}

TEST_F(RawProtocol, BadOptionMagicDisconnects) {
  auto c = haggling();
  std::vector<std::byte> junk(16, std::byte{0x41});
  ASSERT_TRUE(c->send(junk));
  EXPECT_TRUE(c->closed_by_server());
}

TEST_F(RawProtocol, NonFixedClientMayOnlySendExportName) {
  RawClient c(server_.socket());
  ASSERT_TRUE(c.greeting());
  ASSERT_TRUE(c.send_client_flags(0));
  ASSERT_TRUE(c.send_option(kOptList));
  EXPECT_TRUE(c.closed_by_server());
}

TEST_F(RawProtocol, ExportNameWithAndWithoutZeroes) {
  {
    RawClient c(server_.socket());
    ASSERT_TRUE(c.greeting());
    ASSERT_TRUE(c.send_client_flags(kClientFlagFixedNewstyle));
    ASSERT_TRUE(c.send_option(kOptExportName, bytes("disk")));
    auto reply = c.recv(8 + 2 + 124);
    ASSERT_TRUE(reply);
    EXPECT_EQ(wire::load_u64(reply->data()), 1u << 20);
    EXPECT_EQ(wire::load_u16(reply->data() + 8) & kFlagHasFlags, kFlagHasFlags);
    EXPECT_EQ((*reply)[133], std::byte{0});
    still_in_sync(c, false);
  }
  {
    RawClient c(server_.socket());
    ASSERT_TRUE(c.greeting());
    ASSERT_TRUE(c.send_client_flags(kClientFlagFixedNewstyle | kClientFlagNoZeroes));
    ASSERT_TRUE(c.send_option(kOptExportName, bytes("")));  // the default export
    auto reply = c.recv(10);
    ASSERT_TRUE(reply);
    EXPECT_EQ(wire::load_u64(reply->data()), 1u << 20);
    still_in_sync(c, false);  // no padding: the next bytes are the READ reply
  }
}

TEST_F(RawProtocol, ExportNameOfUnknownExportDisconnects) {
  auto c = haggling();
  ASSERT_TRUE(c->send_option(kOptExportName, bytes("nope")));
  EXPECT_TRUE(c->closed_by_server());
}

TEST_F(RawProtocol, TooManyOptionsDisconnect) {
  auto c = haggling();
  bool closed = false;
  for (int i = 0; i < 1000 && !closed; ++i) {
    if (!c->send_option(4242)) break;
    auto r = c->read_option_reply();
    if (!r) closed = true;
  }
  EXPECT_TRUE(closed);
}

TEST_F(RawProtocol, InfoSendsExportNameDescriptionAndBlockSize) {
  auto c = haggling();
  ASSERT_TRUE(c->send_option(kOptInfo, info_payload("", {kInfoName, kInfoDescription, 77})));
  std::vector<uint16_t> kinds;
  for (;;) {
    auto r = c->read_option_reply();
    ASSERT_TRUE(r);
    if (r->type == kRepAck) break;
    ASSERT_EQ(r->type, kRepInfo);
    uint16_t kind = wire::load_u16(r->data.data());
    kinds.push_back(kind);
    if (kind == kInfoName) {
      EXPECT_EQ(std::string(reinterpret_cast<const char*>(r->data.data() + 2), r->data.size() - 2),
                "disk");
    }
    if (kind == kInfoBlockSize) {
      ASSERT_EQ(r->data.size(), 14u);
      EXPECT_EQ(wire::load_u32(r->data.data() + 2), 1u);
      EXPECT_EQ(wire::load_u32(r->data.data() + 6), 4096u);
      EXPECT_EQ(wire::load_u32(r->data.data() + 10), 32u << 20);
    }
    if (kind == kInfoExport) {
      EXPECT_EQ(r->data.size(), 12u);
    }
  }
  // NBD_INFO_EXPORT first, unknown requests (77) ignored.
  EXPECT_EQ(kinds,
            (std::vector<uint16_t>{kInfoExport, kInfoName, kInfoDescription, kInfoBlockSize}));
}

TEST_F(RawProtocol, StalledHandshakeIsDropped) {
  TestServer server([] {
    ServerSettings s;
    s.handshake_timeout = std::chrono::milliseconds(200);
    return s;
  }());
  server.add(make_info("disk", 1 << 20));
  server.start();
  RawClient c(server.socket());
  ASSERT_TRUE(c.greeting());
  // Say nothing: the server gives up on us.
  EXPECT_TRUE(c.closed_by_server());
  EXPECT_TRUE(eventually([&] { return server.server().connection_count() == 0; }));
}

TEST_F(RawProtocol, StalledMidOptionIsDroppedToo) {
  TestServer server([] {
    ServerSettings s;
    s.handshake_timeout = std::chrono::milliseconds(200);
    return s;
  }());
  server.add(make_info("disk", 1 << 20));
  server.start();
  RawClient c(server.socket());
  ASSERT_TRUE(c.greeting());
  ASSERT_TRUE(c.send_client_flags(kClientFlagFixedNewstyle));
  ASSERT_TRUE(c.send_option_header(kOptInfo, 100));  // promise 100 bytes, send none
  EXPECT_TRUE(c.closed_by_server());
}

TEST_F(RawProtocol, BadRequestMagicClosesTheConnection) {
  RawClient c(server_.socket());
  ASSERT_TRUE(c.negotiate("disk", true));
  std::vector<std::byte> junk(28, std::byte{0x55});
  ASSERT_TRUE(c.send(junk));
  EXPECT_TRUE(c.closed_by_server());
}

TEST_F(RawProtocol, UnknownCommandAndFlagsKeepSync) {
  RawClient c(server_.socket());
  ASSERT_TRUE(c.negotiate("disk", true));
  ASSERT_TRUE(c.send_request(0, 99, 1, 0, 0));
  auto r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->cookie, 1u);
  EXPECT_EQ(r->error, kEinval);
  ASSERT_TRUE(c.send_request(0x8000, kCmdRead, 2, 0, 512));
  r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->cookie, 2u);
  EXPECT_EQ(r->type, kReplyTypeError);  // structured: even an early READ error is a chunk
  EXPECT_EQ(r->error, kEinval);
  EXPECT_EQ(r->flags, kReplyFlagDone);
  still_in_sync(c, true);
}

TEST_F(RawProtocol, GiantWritePayloadIsDiscardedAndAnswered) {
  RawClient c(server_.socket());
  ASSERT_TRUE(c.negotiate("disk", false));
  const uint32_t length = (32u << 20) + 4096;
  ASSERT_TRUE(c.send_request(0, kCmdWrite, 5, 0, length));
  std::vector<std::byte> chunk(1 << 20, std::byte{0x77});
  for (uint32_t sent = 0; sent < length;) {
    uint32_t n = std::min<uint32_t>(chunk.size(), length - sent);
    ASSERT_TRUE(c.send(std::span(chunk).first(n)));
    sent += n;
  }
  auto r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->cookie, 5u);
  EXPECT_EQ(r->error, kEoverflow);
  EXPECT_EQ(disk_->count("write"), 0u);
  still_in_sync(c, false);
}

TEST_F(RawProtocol, RefusedWritePayloadIsSkipped) {
  RawClient c(server_.socket());
  ASSERT_TRUE(c.negotiate("disk", false));
  std::vector<std::byte> data(4096, std::byte{1});
  // Past the end: ENOSPC, and the 4 KiB behind the header must not be taken for requests.
  ASSERT_TRUE(c.send_request(0, kCmdWrite, 6, (1 << 20) - 1024, 4096, data));
  auto r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->error, kEnospc);
  still_in_sync(c, false);
}

TEST_F(RawProtocol, PipelinedRequestsInOneSend) {
  RawClient c(server_.socket());
  ASSERT_TRUE(c.negotiate("disk", false));
  std::vector<std::byte> batch;
  std::vector<std::byte> data(512, std::byte{9});
  for (uint64_t i = 0; i < 50; ++i) {
    std::vector<std::byte> h(28);
    wire::store_u32(h.data(), kRequestMagic);
    wire::store_u16(h.data() + 6, i % 2 ? kCmdRead : kCmdWrite);
    wire::store_u64(h.data() + 8, i);
    wire::store_u64(h.data() + 16, i * 512);
    wire::store_u32(h.data() + 24, 512);
    batch.insert(batch.end(), h.begin(), h.end());
    if (i % 2 == 0) batch.insert(batch.end(), data.begin(), data.end());
  }
  ASSERT_TRUE(c.send(batch));
  std::vector<bool> seen(50);
  for (int i = 0; i < 50; ++i) {
    auto r = c.read_reply();
    ASSERT_TRUE(r);
    ASSERT_LT(r->cookie, 50u);
    EXPECT_EQ(r->error, 0u);
    seen[r->cookie] = true;
    if (r->cookie % 2) {
      ASSERT_TRUE(c.recv(512));
    }
  }
  EXPECT_EQ(std::count(seen.begin(), seen.end(), true), 50);
}

TEST_F(RawProtocol, DiscFinishesOutstandingRequestsFirst) {
  std::atomic<bool> gate{false};
  disk_->set_hook([&](const MemoryExport::Call& call) {
    MemoryExport::Fault f;
    if (call.op == "write") f.gate = &gate;
    return f;
  });
  RawClient c(server_.socket());
  ASSERT_TRUE(c.negotiate("disk", false));
  std::vector<std::byte> data(512, std::byte{3});
  ASSERT_TRUE(c.send_request(0, kCmdWrite, 11, 0, 512, data));
  ASSERT_TRUE(c.send_request(0, kCmdDisc, 12, 0, 0));
  ASSERT_TRUE(eventually([&] { return disk_->started() >= 1; }));
  gate = true;
  auto r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->cookie, 11u);
  EXPECT_EQ(r->error, 0u);
  EXPECT_TRUE(c.closed_by_server());
  EXPECT_EQ(disk_->contents(0, 512), data);
}

}  // namespace
}  // namespace hydrate::nbd::testing
