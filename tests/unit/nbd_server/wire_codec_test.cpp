#include <gtest/gtest.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <cerrno>

#include "nbd-server/buffer_pool.h"
#include "nbd-server/export_terms.h"
#include "nbd-server/listen_address.h"
#include "nbd-server/memory_transport.h"
#include "nbd-server/protocol.h"
#include "nbd-server/receive_buffer.h"
#include "nbd-server/reply_builder.h"
#include "nbd-server/request_header.h"
#include "nbd-server/server_error.h"
#include "nbd-server/wire.h"

namespace hydrate::nbd {
namespace {

using namespace proto;

TEST(Wire, BigEndianRoundTrip) {
  std::byte b[8];
  wire::store_u64(b, 0x0102030405060708ull);
  EXPECT_EQ(std::to_integer<int>(b[0]), 1);
  EXPECT_EQ(std::to_integer<int>(b[7]), 8);
  EXPECT_EQ(wire::load_u64(b), 0x0102030405060708ull);
  wire::store_u16(b, 0xabcd);
  EXPECT_EQ(wire::load_u16(b), 0xabcd);
}

TEST(Wire, ReaderFailsStickilyInsteadOfOverrunning) {
  std::vector<std::byte> data(5);
  wire::Reader r(data);
  r.u32();
  EXPECT_TRUE(r.ok());
  r.u16();
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.u32(), 0u);
  EXPECT_EQ(r.remaining(), 0u);
}

TEST(RequestHeader, DecodesAndRejectsBadMagic) {
  RequestHeader in{
      .flags = 1, .type = kCmdWrite, .cookie = 42, .offset = 1ull << 40, .length = 512};
  std::byte buf[kRequestHeaderSize];
  encode_request_header(buf, in);
  RequestHeader out;
  ASSERT_TRUE(decode_request_header(buf, out));
  EXPECT_EQ(out.flags, 1);
  EXPECT_EQ(out.type, kCmdWrite);
  EXPECT_EQ(out.cookie, 42u);
  EXPECT_EQ(out.offset, 1ull << 40);
  EXPECT_EQ(out.length, 512u);
  buf[0] = std::byte{0};
  EXPECT_FALSE(decode_request_header(buf, out));
}

TEST(ExportTerms, TransmissionFlagsFollowExportInfo) {
  ExportInfo info;
  info.size = 1 << 20;
  uint16_t f = transmission_flags(info, true);
  EXPECT_EQ(f, kFlagHasFlags | kFlagSendFlush | kFlagSendFua | kFlagSendTrim |
                   kFlagSendWriteZeroes | kFlagSendDf | kFlagCanMultiConn | kFlagSendCache |
                   kFlagSendFastZero);
  EXPECT_FALSE(transmission_flags(info, false) & kFlagSendDf);
  info.read_only = true;
  info.can_multi_conn = false;
  info.rotational = true;
  f = transmission_flags(info, true);
  EXPECT_TRUE(f & kFlagReadOnly);
  EXPECT_TRUE(f & kFlagRotational);
  EXPECT_FALSE(f & (kFlagSendTrim | kFlagSendWriteZeroes | kFlagSendFastZero | kFlagCanMultiConn));
  info = {};
  info.can_zero = false;
  EXPECT_FALSE(transmission_flags(info, true) & kFlagSendFastZero);  // FAST_ZERO needs ZEROES
}

TEST(ExportTerms, BlockSizesAreMadeLegal) {
  ExportInfo info;
  BlockSizes b = advertised_block_sizes(info);
  EXPECT_EQ(b.minimum, 1u);
  EXPECT_EQ(b.preferred, 4096u);
  EXPECT_EQ(b.maximum, 32u << 20);
  info.min_block = 3000;  // not a power of two
  info.preferred_block = 100;
  info.max_block = 0xffffffff;
  b = advertised_block_sizes(info);
  EXPECT_EQ(b.minimum, 2048u);
  EXPECT_EQ(b.preferred, 2048u);
  EXPECT_EQ(b.maximum, 32u << 20);
  info.min_block = 1 << 20;
  b = advertised_block_sizes(info);
  EXPECT_EQ(b.minimum, 64u * 1024);
}

TEST(ExportTerms, ErrnoMapping) {
  EXPECT_EQ(nbd_error_from_errno(EIO, false), kEio);
  EXPECT_EQ(nbd_error_from_errno(EROFS, false), kEperm);
  EXPECT_EQ(nbd_error_from_errno(EDQUOT, false), kEnospc);
  EXPECT_EQ(nbd_error_from_errno(EFBIG, false), kEnospc);
  EXPECT_EQ(nbd_error_from_errno(ENOTSUP, true), kEnotsup);
  EXPECT_EQ(nbd_error_from_errno(ENOTSUP, false), kEio);
  EXPECT_EQ(nbd_error_from_errno(EBADF, false), kEio);
  EXPECT_EQ(nbd_error_from_errno(ESHUTDOWN, false), kEshutdown);
}

struct Chunk {
  uint16_t flags, type;
  uint64_t cookie;
  std::vector<std::byte> payload;
};

std::vector<Chunk> parse_chunks(const std::vector<std::byte>& wire_bytes) {
  std::vector<Chunk> out;
  size_t at = 0;
  while (at < wire_bytes.size()) {
    const std::byte* p = wire_bytes.data() + at;
    EXPECT_EQ(wire::load_u32(p), kStructuredReplyMagic);
    Chunk c{wire::load_u16(p + 4), wire::load_u16(p + 6), wire::load_u64(p + 8), {}};
    uint32_t length = wire::load_u32(p + 16);
    c.payload.assign(p + 20, p + 20 + length);
    at += 20 + length;
    out.push_back(std::move(c));
  }
  return out;
}

TEST(ReplyBuilder, SimpleReplyWithPayloadIsGathered) {
  ReplyPieces pieces;
  ReplyBuilder b(pieces);
  b.simple(7, 0);
  b.payload(0, 4);
  std::vector<std::byte> data{std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}};
  auto flat = pieces.flatten(data);
  ASSERT_EQ(flat.size(), 20u);
  EXPECT_EQ(wire::load_u32(flat.data()), kSimpleReplyMagic);
  EXPECT_EQ(wire::load_u32(flat.data() + 4), 0u);
  EXPECT_EQ(wire::load_u64(flat.data() + 8), 7u);
  EXPECT_EQ(flat[16], std::byte{1});
  EXPECT_EQ(pieces.pieces.size(), 2u);  // header + data, data not copied
}

TEST(ReplyBuilder, StructuredReadSplitsDataAndHoles) {
  ReplyPieces pieces;
  ReplyBuilder b(pieces);
  // Request [4096, 4096 + 65536); zeros given unsorted, overlapping, partly outside, and one
  // too short to be worth a chunk.
  std::vector<ByteRange> zeros{{20480, 8192}, {0, 8192}, {16384, 4096}, {40000, 100}};
  build_structured_read(b, 9, 4096, 65536, zeros, 4096);
  std::vector<std::byte> data(65536, std::byte{0x5a});
  auto chunks = parse_chunks(pieces.flatten(data));
  ASSERT_EQ(chunks.size(), 4u);
  // hole [4096, 8192)
  EXPECT_EQ(chunks[0].type, kReplyTypeOffsetHole);
  EXPECT_EQ(wire::load_u64(chunks[0].payload.data()), 4096u);
  EXPECT_EQ(wire::load_u32(chunks[0].payload.data() + 8), 4096u);
  // data [8192, 16384)
  EXPECT_EQ(chunks[1].type, kReplyTypeOffsetData);
  EXPECT_EQ(wire::load_u64(chunks[1].payload.data()), 8192u);
  EXPECT_EQ(chunks[1].payload.size(), 8u + 8192);
  // hole [16384, 28672) merged from two touching ranges
  EXPECT_EQ(chunks[2].type, kReplyTypeOffsetHole);
  EXPECT_EQ(wire::load_u64(chunks[2].payload.data()), 16384u);
  EXPECT_EQ(wire::load_u32(chunks[2].payload.data() + 8), 12288u);
  // data to the end, DONE only on the last chunk
  EXPECT_EQ(chunks[3].type, kReplyTypeOffsetData);
  EXPECT_EQ(wire::load_u64(chunks[3].payload.data()), 28672u);
  for (size_t i = 0; i + 1 < chunks.size(); ++i) EXPECT_EQ(chunks[i].flags & kReplyFlagDone, 0);
  uint64_t covered = 0;
  for (auto& c : chunks) {
    covered += c.type == kReplyTypeOffsetHole ? wire::load_u32(c.payload.data() + 8)
                                              : c.payload.size() - 8;
    EXPECT_EQ(c.cookie, 9u);
  }
  EXPECT_EQ(covered, 65536u);
  EXPECT_EQ(chunks.back().flags & kReplyFlagDone, kReplyFlagDone);
}

TEST(ReplyBuilder, StructuredReadOfOneHoleIsOneChunk) {
  ReplyPieces pieces;
  ReplyBuilder b(pieces);
  std::vector<ByteRange> zeros{{0, 1 << 20}};
  build_structured_read(b, 1, 0, 65536, zeros, 4096);
  auto chunks = parse_chunks(pieces.flatten({}));
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0].type, kReplyTypeOffsetHole);
  EXPECT_EQ(chunks[0].flags, kReplyFlagDone);
}

TEST(ReplyBuilder, ErrorChunkCarriesMessageCutTo4096) {
  ReplyPieces pieces;
  ReplyBuilder b(pieces);
  b.error(3, kEio, std::string(5000, 'm'));
  auto chunks = parse_chunks(pieces.flatten({}));
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0].type, kReplyTypeError);
  EXPECT_EQ(chunks[0].flags, kReplyFlagDone);
  EXPECT_EQ(wire::load_u32(chunks[0].payload.data()), kEio);
  EXPECT_EQ(wire::load_u16(chunks[0].payload.data() + 4), 4096);
  EXPECT_EQ(chunks[0].payload.size(), 6u + 4096);
}

TEST(ReplyBuilder, BlockStatusChunk) {
  ReplyPieces pieces;
  ReplyBuilder b(pieces);
  std::vector<Extent> extents{{4096, 0}, {8192, 3}};
  b.block_status(5, 2, extents, true);
  auto chunks = parse_chunks(pieces.flatten({}));
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0].type, kReplyTypeBlockStatus);
  ASSERT_EQ(chunks[0].payload.size(), 4u + 16);
  EXPECT_EQ(wire::load_u32(chunks[0].payload.data()), 2u);
  EXPECT_EQ(wire::load_u32(chunks[0].payload.data() + 12), 8192u);
  EXPECT_EQ(wire::load_u32(chunks[0].payload.data() + 16), 3u);
}

TEST(ListenAddress, ParsesTheSupportedForms) {
  auto a = parse_listen_address("tcp://127.0.0.1:10810");
  EXPECT_EQ(a.kind, ListenAddress::Kind::tcp);
  EXPECT_EQ(a.host, "127.0.0.1");
  EXPECT_EQ(a.port, 10810);
  a = parse_listen_address("tcp://localhost");
  EXPECT_EQ(a.port, kDefaultNbdPort);
  a = parse_listen_address("tcp://[::1]:0");
  EXPECT_EQ(a.host, "::1");
  EXPECT_EQ(a.port, 0);
  a = parse_listen_address("tcp://[fe80::1]");
  EXPECT_EQ(a.port, kDefaultNbdPort);
  a = parse_listen_address("tcp://*:99");
  EXPECT_EQ(a.host, "");
  a = parse_listen_address("unix:/run/x.sock");
  EXPECT_EQ(a.kind, ListenAddress::Kind::unix_socket);
  EXPECT_EQ(a.path, "/run/x.sock");
  EXPECT_EQ(parse_listen_address("unix:///run/y.sock").path, "/run/y.sock");
}

TEST(ListenAddress, BadAddressesNameTheProblem) {
  auto message = [](const char* uri) {
    try {
      parse_listen_address(uri);
    } catch (const ServerError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("http://x").find("expected tcp://"), std::string::npos);
  EXPECT_NE(message("tcp://host:99999").find("above 65535"), std::string::npos);
  EXPECT_NE(message("tcp://host:12ab").find("not a number"), std::string::npos);
  EXPECT_NE(message("tcp://::1:80").find("brackets"), std::string::npos);
  EXPECT_NE(message("tcp://[::1").find("closing"), std::string::npos);
  EXPECT_NE(message("tcp://").find("host is empty"), std::string::npos);
  EXPECT_NE(message("unix:").find("path is empty"), std::string::npos);
  EXPECT_NE(message(("unix:/" + std::string(200, 'a')).c_str()).find("longer"), std::string::npos);
  EXPECT_NE(message("tcp://h:").find("empty"), std::string::npos);
}

TEST(BufferPool, ReusesBuffersBySizeClass) {
  BufferPool pool(1 << 20);
  auto a = pool.get(4000);
  EXPECT_EQ(a.size(), 4000u);
  EXPECT_EQ(a.capacity(), 4096u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a.data()) % 4096, 0u);
  std::byte* first = a.data();
  pool.put(std::move(a));
  EXPECT_EQ(pool.retained_bytes(), 4096u);
  auto b = pool.get(3000);
  EXPECT_EQ(b.data(), first);
  EXPECT_EQ(pool.retained_bytes(), 0u);
  // Beyond the retention limit buffers are freed instead of kept.
  auto big = pool.get(2 << 20);
  pool.put(std::move(big));
  EXPECT_EQ(pool.retained_bytes(), 0u);
}

TEST(ReceiveBuffer, FillsReadsExactlyAndDiscardsAcrossPartialReads) {
  asio::io_context io;
  std::vector<std::byte> input(100000);
  for (size_t i = 0; i < input.size(); ++i) input[i] = static_cast<std::byte>(i * 7);
  MemoryTransport transport(io.get_executor(), input, 333);
  bool finished = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        // Results go through locals: GCC 12 miscompiles co_await inside gtest's macros.
        ReceiveBuffer in(1024);
        std::error_code ec;
        bool ok = co_await in.fill(transport, 10, ec);
        EXPECT_TRUE(ok);
        EXPECT_EQ(in.data()[3], input[3]);
        in.consume(10);
        std::vector<std::byte> big(50000);
        ok = co_await in.read_exact(transport, big, ec);
        EXPECT_TRUE(ok);
        EXPECT_TRUE(std::equal(big.begin(), big.end(), input.begin() + 10));
        ok = co_await in.discard(transport, 49000, ec);
        EXPECT_TRUE(ok);
        ok = co_await in.fill(transport, 900, ec);
        EXPECT_TRUE(ok);
        EXPECT_EQ(in.data()[0], input[99010]);
        in.consume(900);
        std::vector<std::byte> tail(90);
        ok = co_await in.read_exact(transport, tail, ec);
        EXPECT_TRUE(ok);
        EXPECT_EQ(tail.back(), input.back());
        ok = co_await in.fill(transport, 1, ec);
        EXPECT_FALSE(ok);
        EXPECT_EQ(ec, asio::error::eof);
        finished = true;
      },
      asio::detached);
  io.run();
  EXPECT_TRUE(finished);
}

}  // namespace
}  // namespace hydrate::nbd
