// Every command and flag through libnbd, including requests libnbd only sends with strict mode
// off, and the exact errors the server answers.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <map>

#include "tests/unit/nbd_server/test_server.h"

namespace hydrate::nbd::testing {
namespace {

constexpr uint64_t kSize = 16 << 20;

class Commands : public ::testing::Test {
 protected:
  void SetUp() override {
    disk_ = server_.add(make_info("disk", kSize), true);
    ro_ = server_.add(make_info("ro", 1 << 20, true));
    auto aligned = make_info("aligned", 1 << 20);
    aligned.min_block = 512;
    aligned_ = server_.add(aligned);
    auto bare = make_info("bare", 1 << 20);
    bare.can_flush = bare.can_fua = bare.can_trim = bare.can_zero = bare.can_cache = false;
    bare_ = server_.add(bare);
    server_.start();
  }

  // A connection with structured replies and both metadata contexts.
  void connect(NbdHandle& h, const std::string& name = "disk", bool strict = true) {
    nbd_add_meta_context(h, "base:allocation");
    nbd_add_meta_context(h, "hydrate:state");
    if (!strict) nbd_set_strict_mode(h, 0);
    ASSERT_EQ(nbd_connect_uri(h, server_.uri(name).c_str()), 0) << nbd_error_text();
  }

  // The connection still answers correctly after an error.
  void still_works(NbdHandle& h) {
    std::vector<std::byte> buf(512);
    EXPECT_EQ(nbd_pread(h, buf.data(), buf.size(), 0, 0), 0) << nbd_error_text();
  }

  TestServer server_;
  std::shared_ptr<MemoryExport> disk_, ro_, aligned_, bare_;
};

TEST_F(Commands, WriteThenReadBack) {
  NbdHandle h;
  connect(h);
  auto data = pattern(256 * 1024, 7);
  ASSERT_EQ(nbd_pwrite(h, data.data(), data.size(), 12345, 0), 0) << nbd_error_text();
  std::vector<std::byte> back(data.size());
  ASSERT_EQ(nbd_pread(h, back.data(), back.size(), 12345, 0), 0) << nbd_error_text();
  EXPECT_EQ(back, data);
  EXPECT_EQ(disk_->contents(12345, data.size()), data);
}

TEST_F(Commands, LargestPayloadsRoundTrip) {
  NbdHandle h;
  connect(h);
  auto data = pattern(32 << 20, 3);
  disk_->fill(0, std::vector<std::byte>(16 << 20, std::byte{1}));
  NbdHandle big;
  auto info = make_info("big", 64 << 20);
  // 32 MiB is the largest payload; the export is large enough for it.
  auto big_export = std::make_shared<MemoryExport>(info);
  server_.server().add_export(big_export);
  ASSERT_EQ(nbd_connect_uri(big, server_.uri("big").c_str()), 0) << nbd_error_text();
  ASSERT_EQ(nbd_pwrite(big, data.data(), data.size(), 4096, 0), 0) << nbd_error_text();
  std::vector<std::byte> back(data.size());
  ASSERT_EQ(nbd_pread(big, back.data(), back.size(), 4096, 0), 0) << nbd_error_text();
  EXPECT_EQ(back, data);
}

TEST_F(Commands, FuaReachesTheExport) {
  NbdHandle h;
  connect(h);
  auto data = pattern(4096, 1);
  ASSERT_EQ(nbd_pwrite(h, data.data(), data.size(), 0, LIBNBD_CMD_FLAG_FUA), 0);
  ASSERT_EQ(nbd_pwrite(h, data.data(), data.size(), 4096, 0), 0);
  ASSERT_EQ(nbd_trim(h, 4096, 8192, LIBNBD_CMD_FLAG_FUA), 0);
  ASSERT_EQ(nbd_zero(h, 4096, 16384, LIBNBD_CMD_FLAG_FUA | LIBNBD_CMD_FLAG_NO_HOLE), 0);
  ASSERT_EQ(nbd_zero(h, 4096, 16384, 0), 0);
  auto calls = disk_->calls();
  std::vector<bool> fua;
  for (auto& c : calls)
    if (c.op == "write" || c.op == "trim" || c.op == "zero") fua.push_back(c.fua);
  EXPECT_EQ(fua, (std::vector<bool>{true, false, true, true, false}));
}

TEST_F(Commands, FlushTrimZeroAndCache) {
  NbdHandle h;
  connect(h);
  auto data = pattern(65536, 9);
  ASSERT_EQ(nbd_pwrite(h, data.data(), data.size(), 0, 0), 0);
  ASSERT_EQ(nbd_flush(h, 0), 0) << nbd_error_text();
  EXPECT_EQ(disk_->count("flush"), 1u);

  ASSERT_EQ(nbd_trim(h, 8192, 4096, 0), 0) << nbd_error_text();
  EXPECT_FALSE(disk_->allocated(4096 * 2));
  ASSERT_EQ(nbd_zero(h, 8192, 16384, 0), 0) << nbd_error_text();
  ASSERT_EQ(nbd_zero(h, 8192, 32768, LIBNBD_CMD_FLAG_NO_HOLE), 0) << nbd_error_text();
  EXPECT_TRUE(disk_->allocated(32768));
  EXPECT_EQ(disk_->contents(32768, 4), std::vector<std::byte>(4));
  ASSERT_EQ(nbd_zero(h, 4096, 0, LIBNBD_CMD_FLAG_FAST_ZERO), 0) << nbd_error_text();
  ASSERT_EQ(nbd_cache(h, 65536, 0, 0), 0) << nbd_error_text();

  std::vector<MemoryExport::Call> zeros;
  for (auto& c : disk_->calls())
    if (c.op == "zero") zeros.push_back(c);
  ASSERT_EQ(zeros.size(), 3u);
  EXPECT_TRUE(zeros[0].may_trim);
  EXPECT_FALSE(zeros[1].may_trim);  // NO_HOLE
  EXPECT_TRUE(zeros[2].fast_only);
  EXPECT_EQ(disk_->count("cache"), 1u);
}

TEST_F(Commands, FastZeroRefusalIsEnotsup) {
  NbdHandle h;
  connect(h);
  disk_->set_fast_zero_supported(false);
  EXPECT_EQ(nbd_zero(h, 4096, 0, LIBNBD_CMD_FLAG_FAST_ZERO), -1);
  EXPECT_EQ(nbd_get_errno(), ENOTSUP) << nbd_error_text();
  // Without FAST_ZERO the same zeroing works.
  EXPECT_EQ(nbd_zero(h, 4096, 0, 0), 0) << nbd_error_text();
}

struct Chunks {
  std::vector<std::pair<unsigned, std::pair<uint64_t, size_t>>> seen;  // status, offset, count
};

int on_chunk(void* user, const void*, size_t count, uint64_t offset, unsigned status, int*) {
  static_cast<Chunks*>(user)->seen.push_back({status, {offset, count}});
  return 0;
}

TEST_F(Commands, SparseReadsSendHolesAndDfForbidsFragments) {
  NbdHandle h;
  connect(h);
  // 64 KiB of data at 64 KiB; the rest of the first 256 KiB is never written (holes).
  auto data = pattern(65536, 4);
  ASSERT_EQ(nbd_pwrite(h, data.data(), data.size(), 65536, 0), 0);
  std::vector<std::byte> buf(262144, std::byte{0xff});
  Chunks chunks;
  ASSERT_EQ(
      nbd_pread_structured(h, buf.data(), buf.size(), 0,
                           (nbd_chunk_callback){.callback = on_chunk, .user_data = &chunks}, 0),
      0)
      << nbd_error_text();
  size_t holes = 0, data_chunks = 0;
  for (auto& c : chunks.seen) (c.first == LIBNBD_READ_HOLE ? holes : data_chunks)++;
  EXPECT_EQ(holes, 2u);
  EXPECT_EQ(data_chunks, 1u);
  EXPECT_TRUE(std::equal(data.begin(), data.end(), buf.begin() + 65536));
  EXPECT_EQ(buf[0], std::byte{0});
  EXPECT_EQ(buf[200000], std::byte{0});
  EXPECT_TRUE(disk_->calls().back().wants_zeros);

  // DF: exactly one data chunk, and the export is not even asked for zeros.
  chunks.seen.clear();
  ASSERT_EQ(nbd_pread_structured(h, buf.data(), buf.size(), 0,
                                 (nbd_chunk_callback){.callback = on_chunk, .user_data = &chunks},
                                 LIBNBD_CMD_FLAG_DF),
            0)
      << nbd_error_text();
  ASSERT_EQ(chunks.seen.size(), 1u);
  EXPECT_EQ(chunks.seen[0].first, unsigned{LIBNBD_READ_DATA});
  EXPECT_FALSE(disk_->calls().back().wants_zeros);

  // Small reads are not worth the zero scan.
  chunks.seen.clear();
  ASSERT_EQ(
      nbd_pread_structured(h, buf.data(), 4096, 0,
                           (nbd_chunk_callback){.callback = on_chunk, .user_data = &chunks}, 0),
      0);
  ASSERT_EQ(chunks.seen.size(), 1u);
  EXPECT_FALSE(disk_->calls().back().wants_zeros);
}

struct Extents {
  std::map<std::string, std::vector<uint32_t>> by_context;
};

int on_extents(void* user, const char* context, uint64_t, uint32_t* entries, size_t n, int*) {
  auto& v = static_cast<Extents*>(user)->by_context[context];
  v.assign(entries, entries + n);
  return 0;
}

TEST_F(Commands, BlockStatusForEveryContextAndReqOne) {
  NbdHandle h;
  connect(h);
  auto data = pattern(8192, 2);
  ASSERT_EQ(nbd_pwrite(h, data.data(), data.size(), 8192, 0), 0);
  Extents e;
  ASSERT_EQ(nbd_block_status(h, 65536, 0,
                             (nbd_extent_callback){.callback = on_extents, .user_data = &e}, 0),
            0)
      << nbd_error_text();
  ASSERT_EQ(e.by_context.size(), 2u);
  // base:allocation: hole 8 KiB, data 8 KiB, hole to the end of the request.
  EXPECT_EQ(e.by_context["base:allocation"], (std::vector<uint32_t>{8192, 3, 8192, 0, 49152, 3}));
  EXPECT_EQ(e.by_context["hydrate:state"], (std::vector<uint32_t>{8192, 0, 8192, 1, 49152, 0}));

  e.by_context.clear();
  ASSERT_EQ(
      nbd_block_status(h, 65536, 0, (nbd_extent_callback){.callback = on_extents, .user_data = &e},
                       LIBNBD_CMD_FLAG_REQ_ONE),
      0)
      << nbd_error_text();
  EXPECT_EQ(e.by_context["base:allocation"], (std::vector<uint32_t>{8192, 3}));
  EXPECT_EQ(e.by_context["hydrate:state"], (std::vector<uint32_t>{8192, 0}));
  size_t asked_for_one = 0;
  for (auto& c : disk_->calls()) asked_for_one += c.op == "block_status" && c.max_extents == 1;
  EXPECT_EQ(asked_for_one, 2u);  // REQ_ONE is passed down, once per context
}

TEST_F(Commands, BlockStatusIsClippedToTheRequest) {
  NbdHandle h;
  connect(h);
  Extents e;
  // An unwritten export is one hole; asking 1000 bytes gets exactly 1000 bytes back.
  ASSERT_EQ(nbd_block_status(h, 1000, 5,
                             (nbd_extent_callback){.callback = on_extents, .user_data = &e}, 0),
            0)
      << nbd_error_text();
  EXPECT_EQ(e.by_context["base:allocation"], (std::vector<uint32_t>{1000, 3}));
}

TEST_F(Commands, RequestsRunConcurrentlyAndCompleteOutOfOrder) {
  NbdHandle h;
  connect(h);
  std::atomic<bool> gate{false};
  disk_->set_hook([&](const MemoryExport::Call& c) {
    MemoryExport::Fault f;
    if (c.op == "read" && c.offset == 0) f.gate = &gate;
    return f;
  });
  std::vector<std::byte> first(4096), second(4096);
  int64_t slow = nbd_aio_pread(h, first.data(), first.size(), 0, NBD_NULL_COMPLETION, 0);
  int64_t fast = nbd_aio_pread(h, second.data(), second.size(), 8192, NBD_NULL_COMPLETION, 0);
  ASSERT_GT(slow, 0);
  ASSERT_GT(fast, 0);
  // The second read completes although the first is still held in the export.
  while (nbd_aio_command_completed(h, fast) == 0) ASSERT_GE(nbd_poll(h, 20000), 0);
  EXPECT_EQ(nbd_aio_command_completed(h, slow), 0);
  gate = true;
  while (nbd_aio_command_completed(h, slow) == 0) ASSERT_GE(nbd_poll(h, 20000), 0);
}

TEST_F(Commands, ReadOnlyExportRefusesWritesWithEperm) {
  NbdHandle h;
  connect(h, "ro", false);
  auto data = pattern(512, 1);
  EXPECT_EQ(nbd_pwrite(h, data.data(), data.size(), 0, 0), -1);
  EXPECT_EQ(nbd_get_errno(), EPERM) << nbd_error_text();
  EXPECT_EQ(nbd_trim(h, 512, 0, 0), -1);
  EXPECT_EQ(nbd_get_errno(), EPERM) << nbd_error_text();
  EXPECT_EQ(nbd_zero(h, 512, 0, 0), -1);
  EXPECT_EQ(nbd_get_errno(), EPERM) << nbd_error_text();
  EXPECT_EQ(ro_->count("write") + ro_->count("trim") + ro_->count("zero"), 0u);
  still_works(h);
}

TEST_F(Commands, PastTheEndIsEinvalOrEnospc) {
  NbdHandle h;
  connect(h, "disk", false);
  std::vector<std::byte> buf(8192);
  Extents e;
  EXPECT_EQ(nbd_pread(h, buf.data(), 8192, kSize - 4096, 0), -1);
  EXPECT_EQ(nbd_get_errno(), EINVAL) << nbd_error_text();
  EXPECT_EQ(nbd_pwrite(h, buf.data(), 8192, kSize - 4096, 0), -1);
  EXPECT_EQ(nbd_get_errno(), ENOSPC) << nbd_error_text();
  EXPECT_EQ(nbd_zero(h, 8192, kSize, 0), -1);
  EXPECT_EQ(nbd_get_errno(), ENOSPC) << nbd_error_text();
  EXPECT_EQ(nbd_trim(h, 8192, kSize - 4096, 0), -1);
  EXPECT_EQ(nbd_get_errno(), EINVAL) << nbd_error_text();
  EXPECT_EQ(nbd_cache(h, 8192, kSize, 0), -1);
  EXPECT_EQ(nbd_get_errno(), EINVAL) << nbd_error_text();
  EXPECT_EQ(nbd_block_status(h, 8192, kSize,
                             (nbd_extent_callback){.callback = on_extents, .user_data = &e}, 0),
            -1);
  EXPECT_EQ(nbd_get_errno(), EINVAL) << nbd_error_text();
  // An offset so large that offset + length wraps.
  EXPECT_EQ(nbd_pread(h, buf.data(), 8192, UINT64_MAX - 100, 0), -1);
  EXPECT_EQ(nbd_get_errno(), EINVAL) << nbd_error_text();
  still_works(h);
}

TEST_F(Commands, IllegalRequestsGetTheirErrorAndKeepTheConnection) {
  NbdHandle h;
  connect(h, "aligned", false);
  std::vector<std::byte> buf(1 << 20);
  // Misaligned against the 512-byte minimum block.
  EXPECT_EQ(nbd_pread(h, buf.data(), 100, 0, 0), -1);
  EXPECT_EQ(nbd_get_errno(), EINVAL) << nbd_error_text();
  EXPECT_EQ(nbd_pwrite(h, buf.data(), 512, 1, 0), -1);
  EXPECT_EQ(nbd_get_errno(), EINVAL) << nbd_error_text();
  // A flag that means nothing for READ.
  EXPECT_EQ(nbd_pread(h, buf.data(), 512, 0, LIBNBD_CMD_FLAG_NO_HOLE), -1);
  EXPECT_EQ(nbd_get_errno(), EINVAL) << nbd_error_text();
  EXPECT_EQ(nbd_pread(h, buf.data(), 512, 0, LIBNBD_CMD_FLAG_REQ_ONE), -1);
  EXPECT_EQ(nbd_get_errno(), EINVAL) << nbd_error_text();
  EXPECT_EQ(aligned_->count("read") + aligned_->count("write"), 0u);
  still_works(h);
}

TEST_F(Commands, OversizedReadIsEinvalAndKeepsTheConnection) {
  auto info = make_info("huge", 128ull << 20);
  auto huge = std::make_shared<MemoryExport>(info);
  server_.server().add_export(huge);
  NbdHandle h;
  nbd_set_strict_mode(h, 0);
  ASSERT_EQ(nbd_connect_uri(h, server_.uri("huge").c_str()), 0) << nbd_error_text();
  std::vector<std::byte> buf(33 << 20);
  EXPECT_EQ(nbd_pread(h, buf.data(), buf.size(), 0, 0), -1);
  EXPECT_EQ(nbd_get_errno(), EINVAL) << nbd_error_text();
  EXPECT_EQ(huge->count("read"), 0u);
  EXPECT_EQ(nbd_pread(h, buf.data(), 4096, 0, 0), 0) << nbd_error_text();
}

TEST_F(Commands, UnsupportedCommandsAreEinval) {
  NbdHandle h;
  connect(h, "bare", false);
  std::vector<std::byte> buf(512);
  EXPECT_EQ(nbd_can_flush(h), 0);
  EXPECT_EQ(nbd_flush(h, 0), -1);
  EXPECT_EQ(nbd_get_errno(), EINVAL) << nbd_error_text();
  EXPECT_EQ(nbd_trim(h, 512, 0, 0), -1);
  EXPECT_EQ(nbd_get_errno(), EINVAL) << nbd_error_text();
  EXPECT_EQ(nbd_zero(h, 512, 0, 0), -1);
  EXPECT_EQ(nbd_get_errno(), EINVAL) << nbd_error_text();
  EXPECT_EQ(nbd_cache(h, 512, 0, 0), -1);
  EXPECT_EQ(nbd_get_errno(), EINVAL) << nbd_error_text();
  EXPECT_EQ(nbd_pwrite(h, buf.data(), 512, 0, LIBNBD_CMD_FLAG_FUA), -1);
  EXPECT_EQ(nbd_get_errno(), EINVAL) << nbd_error_text();
  EXPECT_EQ(bare_->calls().size(), 0u);
  still_works(h);
}

TEST_F(Commands, BlockStatusWithoutAContextOrStructuredRepliesIsEinval) {
  NbdHandle h;
  nbd_set_strict_mode(h, 0);
  ASSERT_EQ(nbd_connect_uri(h, server_.uri("disk").c_str()), 0) << nbd_error_text();
  Extents e;
  EXPECT_EQ(nbd_block_status(h, 4096, 0,
                             (nbd_extent_callback){.callback = on_extents, .user_data = &e}, 0),
            -1);
  EXPECT_EQ(nbd_get_errno(), EINVAL) << nbd_error_text();
  still_works(h);
}

TEST_F(Commands, ZeroLengthRequestsSucceedWithoutReachingTheExport) {
  NbdHandle h;
  connect(h, "disk", false);
  std::vector<std::byte> buf(1);
  EXPECT_EQ(nbd_pread(h, buf.data(), 0, 0, 0), 0) << nbd_error_text();
  EXPECT_EQ(nbd_pwrite(h, buf.data(), 0, 0, 0), 0) << nbd_error_text();
  EXPECT_EQ(nbd_trim(h, 0, 0, 0), 0) << nbd_error_text();
  EXPECT_EQ(nbd_zero(h, 0, 0, 0), 0) << nbd_error_text();
  EXPECT_EQ(disk_->count("read") + disk_->count("trim") + disk_->count("zero"), 0u);
}

TEST_F(Commands, ExportErrorsReachTheClientMapped) {
  NbdHandle h;
  connect(h);
  disk_->set_hook([](const MemoryExport::Call& c) {
    MemoryExport::Fault f;
    if (c.offset == 4096) f.error = EIO, f.message = "source unreachable";
    if (c.offset == 8192) f.error = EDQUOT, f.message = "quota";
    if (c.offset == 12288) f.error = EBADF, f.message = "something odd";
    return f;
  });
  std::vector<std::byte> buf(4096);
  EXPECT_EQ(nbd_pread(h, buf.data(), buf.size(), 4096, 0), -1);
  EXPECT_EQ(nbd_get_errno(), EIO) << nbd_error_text();
  EXPECT_EQ(nbd_pwrite(h, buf.data(), buf.size(), 8192, 0), -1);
  EXPECT_EQ(nbd_get_errno(), ENOSPC) << nbd_error_text();
  EXPECT_EQ(nbd_pread(h, buf.data(), buf.size(), 12288, 0), -1);
  EXPECT_EQ(nbd_get_errno(), EIO) << nbd_error_text();
  Extents e;
  EXPECT_EQ(nbd_block_status(h, 4096, 4096,
                             (nbd_extent_callback){.callback = on_extents, .user_data = &e}, 0),
            -1);
  EXPECT_EQ(nbd_get_errno(), EIO) << nbd_error_text();
  still_works(h);
}

TEST_F(Commands, AnExportThatThrowsCostsOneRequestNotTheConnection) {
  NbdHandle h;
  connect(h);
  disk_->set_hook([](const MemoryExport::Call& c) -> MemoryExport::Fault {
    if (c.offset == 4096) throw std::runtime_error("export bug");
    return {};
  });
  std::vector<std::byte> buf(4096);
  EXPECT_EQ(nbd_pread(h, buf.data(), buf.size(), 4096, 0), -1);
  EXPECT_EQ(nbd_get_errno(), EIO) << nbd_error_text();
  EXPECT_EQ(nbd_pwrite(h, buf.data(), buf.size(), 4096, 0), -1);
  EXPECT_EQ(nbd_get_errno(), EIO) << nbd_error_text();
  Extents e;
  EXPECT_EQ(nbd_block_status(h, 4096, 4096,
                             (nbd_extent_callback){.callback = on_extents, .user_data = &e}, 0),
            -1);
  still_works(h);
}

TEST_F(Commands, ErrorsWithoutStructuredReplies) {
  NbdHandle h;
  nbd_set_request_structured_replies(h, false);
  nbd_set_strict_mode(h, 0);
  ASSERT_EQ(nbd_connect_uri(h, server_.uri("disk").c_str()), 0) << nbd_error_text();
  disk_->set_hook([](const MemoryExport::Call& c) {
    MemoryExport::Fault f;
    if (c.offset == 4096) f.error = EIO, f.message = "bad sector";
    return f;
  });
  std::vector<std::byte> buf(8192);
  EXPECT_EQ(nbd_pread(h, buf.data(), 4096, 4096, 0), -1);
  EXPECT_EQ(nbd_get_errno(), EIO) << nbd_error_text();
  EXPECT_EQ(nbd_pread(h, buf.data(), 8192, kSize - 4096, 0), -1);
  EXPECT_EQ(nbd_get_errno(), EINVAL) << nbd_error_text();
  EXPECT_EQ(nbd_pread(h, buf.data(), 4096, 0, 0), 0) << nbd_error_text();
}

TEST_F(Commands, ManyConnectionsAndManyRequestsInFlight) {
  constexpr int kConnections = 4, kRequests = 64;
  std::vector<std::unique_ptr<NbdHandle>> handles;
  for (int i = 0; i < kConnections; ++i) {
    handles.push_back(std::make_unique<NbdHandle>());
    connect(*handles.back());
  }
  std::vector<std::vector<std::byte>> data;
  for (int c = 0; c < kConnections; ++c) {
    for (int r = 0; r < kRequests; ++r) {
      data.push_back(pattern(4096, static_cast<uint8_t>(c * kRequests + r)));
      uint64_t offset = (static_cast<uint64_t>(c) * kRequests + r) * 8192;
      ASSERT_GT(
          nbd_aio_pwrite(*handles[c], data.back().data(), 4096, offset, NBD_NULL_COMPLETION, 0), 0);
    }
  }
  for (auto& h : handles)
    while (nbd_aio_in_flight(*h) > 0) ASSERT_GE(nbd_poll(*h, 20000), 0);
  for (int c = 0; c < kConnections; ++c) {
    ASSERT_EQ(nbd_flush(*handles[c], 0), 0);
    for (int r = 0; r < kRequests; ++r) {
      uint64_t offset = (static_cast<uint64_t>(c) * kRequests + r) * 8192;
      std::vector<std::byte> back(4096);
      ASSERT_EQ(nbd_pread(*handles[(c + 1) % kConnections], back.data(), 4096, offset, 0), 0);
      EXPECT_EQ(back, data[c * kRequests + r]);
    }
  }
}

}  // namespace
}  // namespace hydrate::nbd::testing
