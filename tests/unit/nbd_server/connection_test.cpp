// A whole connection driven from memory (no sockets): exact server output for scripted
// sessions, whatever way the client's bytes are sliced into reads.
#include "nbd-server/connection.h"

#include <gtest/gtest.h>

#include <asio/io_context.hpp>

#include "nbd-server/memory_transport.h"
#include "nbd-server/protocol.h"
#include "nbd-server/request_header.h"
#include "nbd-server/server_state.h"
#include "nbd-server/wire.h"
#include "tests/unit/nbd_server/memory_export.h"
#include "tests/unit/nbd_server/raw_client.h"
#include "tests/unit/nbd_server/test_server.h"

namespace hydrate::nbd::testing {
namespace {

using namespace proto;

std::vector<std::byte> option(uint32_t opt, const std::vector<std::byte>& data = {}) {
  std::vector<std::byte> h(16);
  wire::store_u64(h.data(), kOptionMagic);
  wire::store_u32(h.data() + 8, opt);
  wire::store_u32(h.data() + 12, static_cast<uint32_t>(data.size()));
  return cat({h, data});
}

std::vector<std::byte> request(uint16_t type, uint64_t cookie, uint64_t offset, uint32_t length,
                               uint16_t flags = 0) {
  std::vector<std::byte> h(kRequestHeaderSize);
  encode_request_header(h.data(), {flags, type, cookie, offset, length});
  return h;
}

struct Session {
  std::vector<std::byte> output;
  bool closed = false;
  size_t connections_left = 0;
};

Session run_session(std::vector<std::byte> input, size_t max_read,
                    std::shared_ptr<MemoryExport> disk = nullptr) {
  asio::io_context io;
  auto state = std::make_shared<ServerState>(ServerSettings{});
  if (!disk) disk = std::make_shared<MemoryExport>(make_info("disk", 1 << 20));
  state->exports.add(disk, true);
  auto transport = std::make_unique<MemoryTransport>(io.get_executor(), std::move(input), max_read);
  MemoryTransport* raw = transport.get();
  auto connection = std::make_shared<Connection>(state, std::move(transport), "memory");
  EXPECT_TRUE(state->admit(connection));
  connection->start();
  Session s;
  io.run();
  s.output = raw->output();
  s.closed = raw->closed();
  s.connections_left = state->connection_count();
  return s;
}

TEST(ConnectionInMemory, ScriptedSessionProducesTheExactReplies) {
  auto disk = std::make_shared<MemoryExport>(make_info("disk", 1 << 20));
  auto data = pattern(512, 6);
  disk->fill(4096, data);
  auto input =
      cat({be32(kClientFlagFixedNewstyle | kClientFlagNoZeroes), option(kOptStructuredReply),
           option(kOptGo, info_payload("disk")), request(kCmdRead, 42, 4096, 512),
           request(kCmdFlush, 43, 0, 0), request(kCmdDisc, 44, 0, 0)});
  Session s = run_session(input, SIZE_MAX, disk);
  EXPECT_TRUE(s.closed);
  EXPECT_EQ(s.connections_left, 0u);

  const std::byte* p = s.output.data();
  size_t left = s.output.size();
  auto take = [&](size_t n) {
    EXPECT_GE(left, n);
    const std::byte* at = p;
    p += std::min(n, left);
    left -= std::min(n, left);
    return at;
  };
  const std::byte* greeting = take(18);
  EXPECT_EQ(wire::load_u64(greeting), kInitMagic);
  EXPECT_EQ(wire::load_u64(greeting + 8), kOptionMagic);
  EXPECT_EQ(wire::load_u16(greeting + 16), kFlagFixedNewstyle | kFlagNoZeroes);
  auto option_reply = [&](uint32_t opt, uint32_t type) {
    const std::byte* r = take(20);
    EXPECT_EQ(wire::load_u64(r), kOptionReplyMagic);
    EXPECT_EQ(wire::load_u32(r + 8), opt);
    EXPECT_EQ(wire::load_u32(r + 12), type);
    uint32_t length = wire::load_u32(r + 16);
    return std::pair(take(length), length);
  };
  option_reply(kOptStructuredReply, kRepAck);
  auto [info, info_length] = option_reply(kOptGo, kRepInfo);
  ASSERT_EQ(info_length, 12u);
  EXPECT_EQ(wire::load_u16(info), kInfoExport);
  EXPECT_EQ(wire::load_u64(info + 2), 1u << 20);
  auto [sizes, sizes_length] = option_reply(kOptGo, kRepInfo);
  ASSERT_EQ(sizes_length, 14u);
  EXPECT_EQ(wire::load_u16(sizes), kInfoBlockSize);
  option_reply(kOptGo, kRepAck);

  // READ: one OFFSET_DATA chunk with DONE (512 bytes is below the sparse-read threshold).
  const std::byte* chunk = take(20);
  EXPECT_EQ(wire::load_u32(chunk), kStructuredReplyMagic);
  EXPECT_EQ(wire::load_u16(chunk + 4), kReplyFlagDone);
  EXPECT_EQ(wire::load_u16(chunk + 6), kReplyTypeOffsetData);
  EXPECT_EQ(wire::load_u64(chunk + 8), 42u);
  EXPECT_EQ(wire::load_u32(chunk + 16), 8u + 512);
  EXPECT_EQ(wire::load_u64(take(8)), 4096u);
  const std::byte* payload = take(512);
  EXPECT_TRUE(std::equal(data.begin(), data.end(), payload));
  // FLUSH: a simple reply.
  const std::byte* simple = take(16);
  EXPECT_EQ(wire::load_u32(simple), kSimpleReplyMagic);
  EXPECT_EQ(wire::load_u32(simple + 4), 0u);
  EXPECT_EQ(wire::load_u64(simple + 8), 43u);
  // DISC has no reply.
  EXPECT_EQ(left, 0u);
  EXPECT_EQ(disk->count("flush"), 1u);
}

TEST(ConnectionInMemory, OutputDoesNotDependOnHowInputIsSliced) {
  auto input =
      cat({be32(kClientFlagFixedNewstyle), option(kOptList), option(4242, bytes("xyz")),
           option(kOptInfo, info_payload("disk", {kInfoName, kInfoDescription})),
           option(kOptExportName, bytes("disk")), request(kCmdWrite, 1, 0, 4), bytes("abcd"),
           request(kCmdRead, 2, 0, 4), request(99, 3, 0, 0), request(kCmdDisc, 4, 0, 0)});
  Session whole = run_session(input, SIZE_MAX);
  for (size_t slice : {1, 3, 7, 16, 29}) {
    Session sliced = run_session(input, slice);
    EXPECT_EQ(sliced.output, whole.output) << "slices of " << slice << " bytes";
  }
  // Sanity: the last reply is the simple EINVAL for command 99, the READ returned "abcd".
  ASSERT_GE(whole.output.size(), 16u);
  const std::byte* last = whole.output.data() + whole.output.size() - 16;
  EXPECT_EQ(wire::load_u32(last + 4), kEinval);
  EXPECT_EQ(wire::load_u64(last + 8), 3u);
  const std::byte* read_data = last - 4;
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(read_data), 4), "abcd");
}

TEST(ConnectionInMemory, GarbageAfterTheGreetingEndsTheConnection) {
  Session s = run_session(bytes("this is not an NBD client at all, just text"), 5);
  EXPECT_TRUE(s.closed);
  EXPECT_EQ(s.output.size(), 18u);  // the greeting only
  EXPECT_EQ(s.connections_left, 0u);
}

TEST(ConnectionInMemory, EndOfStreamMidRequestStillAnswersWhatWasComplete) {
  auto input = cat({be32(kClientFlagFixedNewstyle | kClientFlagNoZeroes),
                    option(kOptExportName, bytes("disk")), request(kCmdRead, 9, 0, 512),
                    request(kCmdWrite, 10, 0, 4096), bytes("only part of the payload")});
  Session s = run_session(input, 64);
  EXPECT_TRUE(s.closed);
  // greeting + export name reply (no zeroes) + the READ's simple reply and data.
  ASSERT_EQ(s.output.size(), 18u + 10 + 16 + 512);
  EXPECT_EQ(wire::load_u64(s.output.data() + 28 + 8), 9u);
}

}  // namespace
}  // namespace hydrate::nbd::testing
