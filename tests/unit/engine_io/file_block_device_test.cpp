#include "engine/file_block_device.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "tests/support/run_coroutine.h"
#include "tests/unit/engine_io/io_test_util.h"

namespace hydrate {
namespace {

using test::all_zero;
using test::random_bytes;
using test::run_coroutine;
using test::TempDir;

constexpr uint64_t KiB = 1024;
constexpr uint64_t MiB = 1024 * KiB;
constexpr uint32_t kHole = kAllocationHole | kAllocationZero;

// Blocks the file occupies on disk (st_blocks is in 512-byte units).
uint64_t allocated_bytes(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0);
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

class FileBlockDeviceTest : public ::testing::Test {
 protected:
  std::unique_ptr<FileBlockDevice> open(const std::string& path, FileOpenOptions options = {}) {
    options.pool = &pool;
    std::unique_ptr<FileBlockDevice> device;
    IoResult r = FileBlockDevice::open(path, options, device);
    EXPECT_TRUE(r.ok()) << r.message;
    return device;
  }
  std::unique_ptr<FileBlockDevice> create(const std::string& name, uint64_t size,
                                          FileOpenOptions options = {}) {
    options.ensure_size = size;
    return open(dir.file(name), options);
  }

  IoResult write(BlockDevice& d, uint64_t offset, std::span<const std::byte> data,
                 bool fua = false) {
    return run_coroutine(context, d.write(offset, data, fua));
  }
  IoResult read(BlockDevice& d, uint64_t offset, std::span<std::byte> out) {
    return run_coroutine(context, d.read(offset, out));
  }
  std::vector<std::byte> read_back(BlockDevice& d, uint64_t offset, size_t length) {
    std::vector<std::byte> out(length, std::byte{0x5a});
    IoResult r = read(d, offset, out);
    EXPECT_TRUE(r.ok()) << r.message;
    return out;
  }
  ExtentList allocation(BlockDevice& d, uint64_t offset, uint64_t length) {
    ExtentList out;
    IoResult r = run_coroutine(context, d.allocation(offset, length, out));
    EXPECT_TRUE(r.ok()) << r.message;
    return out;
  }

  TempDir dir;
  asio::io_context context;
  // The pool is destroyed first: its threads still drop work guards on the context after
  // a call completes, so the context must outlive them.
  BlockingPool pool{4};
};

TEST_F(FileBlockDeviceTest, MissingFileIsRefusedWithPathAndErrno) {
  std::unique_ptr<FileBlockDevice> device;
  std::string path = dir.file("does-not-exist.img");
  IoResult r = FileBlockDevice::open(path, {}, device);
  EXPECT_EQ(r.error, ENOENT);
  EXPECT_NE(r.message.find(path), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("open"), std::string::npos) << r.message;
  EXPECT_EQ(device, nullptr);
}

TEST_F(FileBlockDeviceTest, DirectoryIsRefused) {
  std::unique_ptr<FileBlockDevice> device;
  FileOpenOptions options;
  options.read_only = true;
  IoResult r = FileBlockDevice::open(dir.path().string(), options, device);
  EXPECT_EQ(r.error, EINVAL);
  EXPECT_NE(r.message.find("not a regular file or a block device"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find(dir.path().string()), std::string::npos) << r.message;
}

TEST_F(FileBlockDeviceTest, EnsureSizeCreatesASparseFileAndNeverShrinks) {
  auto device = create("new.img", 4 * MiB);
  ASSERT_TRUE(device);
  EXPECT_EQ(device->size(), 4 * MiB);
  EXPECT_EQ(std::filesystem::file_size(dir.file("new.img")), 4 * MiB);
  EXPECT_EQ(allocation(*device, 0, 4 * MiB), (ExtentList{{4 * MiB, kHole}}));
  device.reset();

  auto again = create("new.img", 1 * MiB);
  EXPECT_EQ(again->size(), 4 * MiB);
}

TEST_F(FileBlockDeviceTest, ReadOnlyWithEnsureSizeIsRefused) {
  std::unique_ptr<FileBlockDevice> device;
  FileOpenOptions options;
  options.read_only = true;
  options.ensure_size = 4096;
  IoResult r = FileBlockDevice::open(dir.file("x.img"), options, device);
  EXPECT_EQ(r.error, EINVAL);
  EXPECT_FALSE(std::filesystem::exists(dir.file("x.img")));
}

TEST_F(FileBlockDeviceTest, WritesReadBackAtUnalignedOffsets) {
  auto device = create("rw.img", 2 * MiB);
  auto data = random_bytes(300 * KiB + 17, 1);
  ASSERT_TRUE(write(*device, 12345, data).ok());
  EXPECT_EQ(read_back(*device, 12345, data.size()), data);
  // Bytes around the write are still zero.
  EXPECT_TRUE(all_zero(read_back(*device, 0, 12345)));
  EXPECT_TRUE(all_zero(read_back(*device, 12345 + data.size(), 4096)));

  auto fua_data = random_bytes(4096, 2);
  ASSERT_TRUE(write(*device, 2 * MiB - 4096, fua_data, /*fua=*/true).ok());
  EXPECT_EQ(read_back(*device, 2 * MiB - 4096, 4096), fua_data);
  EXPECT_TRUE(run_coroutine(context, device->flush()).ok());

  // What the device wrote is in the file.
  std::ifstream in(dir.file("rw.img"), std::ios::binary);
  in.seekg(12345);
  std::vector<char> raw(data.size());
  in.read(raw.data(), static_cast<std::streamsize>(raw.size()));
  EXPECT_EQ(std::memcmp(raw.data(), data.data(), data.size()), 0);
}

TEST_F(FileBlockDeviceTest, RequestsPastTheEndAreRefusedWithContext) {
  auto device = create("small.img", 64 * KiB);
  std::vector<std::byte> buf(8192);
  IoResult r = read(*device, 60 * KiB, buf);
  EXPECT_EQ(r.error, EINVAL);
  EXPECT_NE(r.message.find(dir.file("small.img")), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("read at offset 61440"), std::string::npos) << r.message;
  EXPECT_EQ(write(*device, UINT64_MAX - 10, buf).error, EINVAL);  // no overflow
  EXPECT_EQ(run_coroutine(context, device->write_zeroes(64 * KiB, 1, true)).error, EINVAL);
  EXPECT_EQ(run_coroutine(context, device->discard(0, 64 * KiB + 1)).error, EINVAL);
}

TEST_F(FileBlockDeviceTest, ReadOnlyDeviceRefusesEveryChange) {
  { auto rw = create("ro.img", 64 * KiB); }
  FileOpenOptions options;
  options.read_only = true;
  auto device = open(dir.file("ro.img"), options);
  ASSERT_TRUE(device);
  EXPECT_TRUE(device->read_only());
  EXPECT_FALSE(device->fast_zero());
  std::vector<std::byte> buf(512);
  for (IoResult r :
       {write(*device, 4096, buf), run_coroutine(context, device->write_zeroes(4096, 512, true)),
        run_coroutine(context, device->discard(4096, 512))}) {
    EXPECT_EQ(r.error, EPERM);
    EXPECT_NE(r.message.find(dir.file("ro.img")), std::string::npos) << r.message;
    EXPECT_NE(r.message.find("offset 4096"), std::string::npos) << r.message;
  }
  EXPECT_TRUE(read(*device, 0, buf).ok());
  EXPECT_TRUE(run_coroutine(context, device->flush()).ok());
}

TEST_F(FileBlockDeviceTest, AllocationReportsHolesAndData) {
  auto device = create("sparse.img", 4 * MiB);
  ASSERT_TRUE(write(*device, 1 * MiB, random_bytes(64 * KiB, 3)).ok());
  ASSERT_TRUE(write(*device, 3 * MiB, random_bytes(4 * KiB, 4)).ok());
  ASSERT_TRUE(run_coroutine(context, device->flush()).ok());

  EXPECT_EQ(allocation(*device, 0, 4 * MiB), (ExtentList{{1 * MiB, kHole},
                                                         {64 * KiB, 0},
                                                         {2 * MiB - 64 * KiB, kHole},
                                                         {4 * KiB, 0},
                                                         {MiB - 4 * KiB, kHole}}));
  // A window starting inside data and ending inside a hole is clipped to the request.
  EXPECT_EQ(allocation(*device, 1 * MiB + 4 * KiB, 100 * KiB),
            (ExtentList{{60 * KiB, 0}, {40 * KiB, kHole}}));
  // Appends to what the caller already has.
  ExtentList out{{7, 0}};
  ASSERT_TRUE(run_coroutine(context, device->allocation(0, 4096, out)).ok());
  EXPECT_EQ(out, (ExtentList{{7, 0}, {4096, kHole}}));
}

TEST_F(FileBlockDeviceTest, WriteZeroesWithUnmapPunchesAHole) {
  auto device = create("zero.img", 2 * MiB);
  ASSERT_TRUE(write(*device, 0, random_bytes(2 * MiB, 5)).ok());
  ASSERT_TRUE(run_coroutine(context, device->flush()).ok());
  uint64_t before = allocated_bytes(dir.file("zero.img"));
  ASSERT_TRUE(device->fast_zero()) << "this file system cannot punch holes";

  ASSERT_TRUE(run_coroutine(context, device->write_zeroes(512 * KiB, 256 * KiB, true)).ok());
  EXPECT_TRUE(all_zero(read_back(*device, 512 * KiB, 256 * KiB)));
  EXPECT_FALSE(all_zero(read_back(*device, 512 * KiB - 4096, 4096)));
  EXPECT_FALSE(all_zero(read_back(*device, 768 * KiB, 4096)));
  EXPECT_LE(allocated_bytes(dir.file("zero.img")), before - 256 * KiB);
  auto extents = allocation(*device, 512 * KiB, 256 * KiB);
  EXPECT_EQ(extents, (ExtentList{{256 * KiB, kHole}}));
}

TEST_F(FileBlockDeviceTest, WriteZeroesWithoutUnmapKeepsTheSpace) {
  auto device = create("zero2.img", 2 * MiB);
  ASSERT_TRUE(write(*device, 0, random_bytes(2 * MiB, 6)).ok());
  ASSERT_TRUE(run_coroutine(context, device->flush()).ok());
  uint64_t before = allocated_bytes(dir.file("zero2.img"));

  // Unaligned on purpose: the edges are partial blocks.
  ASSERT_TRUE(run_coroutine(context, device->write_zeroes(100'001, 300'000, false)).ok());
  EXPECT_TRUE(all_zero(read_back(*device, 100'001, 300'000)));
  auto edge = read_back(*device, 100'000, 1);
  EXPECT_NE(edge[0], std::byte{0});
  edge = read_back(*device, 400'001, 1);
  EXPECT_NE(edge[0], std::byte{0});
  EXPECT_GE(allocated_bytes(dir.file("zero2.img")), before);
}

TEST_F(FileBlockDeviceTest, DiscardPunchesAndReadsAsZero) {
  auto device = create("trim.img", 1 * MiB);
  ASSERT_TRUE(write(*device, 0, random_bytes(1 * MiB, 7)).ok());
  ASSERT_TRUE(run_coroutine(context, device->flush()).ok());
  ASSERT_TRUE(device->discard_zeroes());
  uint64_t before = allocated_bytes(dir.file("trim.img"));
  ASSERT_TRUE(run_coroutine(context, device->discard(256 * KiB, 512 * KiB)).ok());
  EXPECT_TRUE(all_zero(read_back(*device, 256 * KiB, 512 * KiB)));
  EXPECT_LE(allocated_bytes(dir.file("trim.img")), before - 512 * KiB);
}

TEST_F(FileBlockDeviceTest, CachedReadsAreServedInline) {
  auto device = create("warm.img", 1 * MiB);
  auto data = random_bytes(64 * KiB, 8);
  ASSERT_TRUE(write(*device, 0, data).ok());
  // Just written through the page cache, so it is resident.
  EXPECT_EQ(read_back(*device, 0, data.size()), data);
  auto c = device->counters();
  EXPECT_EQ(c.inline_reads, 1u);
  EXPECT_EQ(c.pool_reads, 0u);
  EXPECT_EQ(c.inline_writes + c.pool_writes, 1u);
}

TEST_F(FileBlockDeviceTest, SmallBufferedWritesAreServedInline) {
  auto device = create("small-writes.img", 1 * MiB);
  auto data = random_bytes(4 * KiB, 11);
  // Whether or not the file system takes RWF_NOWAIT writes, a small buffered write is served
  // on the event loop (the first one at least: a slow one may pause the inline path).
  ASSERT_TRUE(write(*device, 0, data).ok());
  EXPECT_EQ(device->counters().inline_writes, 1u);
  EXPECT_EQ(device->counters().pool_writes, 0u);
  EXPECT_EQ(read_back(*device, 0, data.size()), data);
  // FUA needs the disk: always the pool.
  ASSERT_TRUE(run_coroutine(context, device->write(8 * KiB, data, true)).ok());
  EXPECT_EQ(device->counters().pool_writes, 1u);
  EXPECT_EQ(read_back(*device, 8 * KiB, data.size()), data);
}

TEST_F(FileBlockDeviceTest, UncachedWritesGoDirectWhereAlignedAndReadBackEverywhere) {
  auto device = create("uncached.img", 4 * MiB);
  constexpr std::align_val_t kAlign{FileBlockDevice::kDirectAlignment};
  std::unique_ptr<std::byte, void (*)(std::byte*)> buffer(
      static_cast<std::byte*>(::operator new(1 * MiB + 8 * KiB, kAlign)),
      [](std::byte* p) { ::operator delete(p, kAlign); });
  auto data = random_bytes(1 * MiB + 8 * KiB, 12);
  std::memcpy(buffer.get(), data.data(), data.size());
  // A cached page over the range first: the direct write must not leave it stale.
  ASSERT_TRUE(write(*device, 64 * KiB, random_bytes(4 * KiB, 13)).ok());
  ASSERT_EQ(read_back(*device, 64 * KiB, 4 * KiB).size(), 4 * KiB);

  // Aligned: direct (where the file system allows O_DIRECT), with an unaligned 1 KiB tail.
  const std::span<const std::byte> aligned(buffer.get(), 1 * MiB + 1 * KiB);
  ASSERT_TRUE(run_coroutine(context, device->write_uncached(0, aligned)).ok());
  // Misaligned offset and buffer: buffered, same result.
  const std::span<const std::byte> misaligned(buffer.get() + 512, 4 * KiB);
  ASSERT_TRUE(run_coroutine(context, device->write_uncached(2 * MiB + 512, misaligned)).ok());
  ASSERT_TRUE(run_coroutine(context, device->flush()).ok());

  EXPECT_EQ(read_back(*device, 0, aligned.size()),
            std::vector<std::byte>(data.begin(), data.begin() + aligned.size()));
  EXPECT_EQ(read_back(*device, 2 * MiB + 512, 4 * KiB),
            std::vector<std::byte>(data.begin() + 512, data.begin() + 512 + 4 * KiB));
  const int probe = ::open(dir.file("uncached.img").c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
  EXPECT_EQ(device->counters().direct_writes, probe >= 0 ? 1u : 0u)
      << "only the aligned call can go direct, and it must where O_DIRECT opens";
  if (probe >= 0) ::close(probe);
  // Out of range and read-only are refused like write().
  EXPECT_EQ(run_coroutine(context, device->write_uncached(4 * MiB, aligned)).error, EINVAL);
}

TEST_F(FileBlockDeviceTest, UncachedReadFallsBackToThePool) {
  auto device = create("cold.img", 16 * MiB);
  auto data = random_bytes(16 * MiB, 9);
  ASSERT_TRUE(write(*device, 0, data).ok());
  ASSERT_TRUE(run_coroutine(context, device->flush()).ok());
  // Drop the file's pages (they are clean after the flush) so RWF_NOWAIT finds nothing cached.
  int fd = ::open(dir.file("cold.img").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
  ::close(fd);

  auto before = device->counters();
  EXPECT_EQ(read_back(*device, 0, data.size()), data);
  auto after = device->counters();
  if (after.pool_reads == before.pool_reads)
    GTEST_SKIP() << "the kernel kept the pages cached; the fallback was not exercised here";
  EXPECT_EQ(after.pool_reads, before.pool_reads + 1);
}

TEST_F(FileBlockDeviceTest, NowaitSwitchedOffSendsEverythingToThePool) {
  FileOpenOptions options;
  options.try_nowait = false;
  auto device = create("pool.img", 1 * MiB, options);
  auto data = random_bytes(8 * KiB, 10);
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(write(*device, i * 8 * KiB, data).ok());
    EXPECT_EQ(read_back(*device, i * 8 * KiB, data.size()), data);
  }
  auto c = device->counters();
  EXPECT_EQ(c.inline_reads, 0u);
  EXPECT_EQ(c.pool_reads, 4u);
  EXPECT_EQ(c.inline_writes, 0u);
  EXPECT_EQ(c.pool_writes, 4u);
}

TEST_F(FileBlockDeviceTest, FileTruncatedBehindOurBackGivesEioWithPath) {
  auto device = create("shrinks.img", 1 * MiB);
  ASSERT_EQ(::truncate(dir.file("shrinks.img").c_str(), 64 * KiB), 0);
  std::vector<std::byte> buf(4096);
  IoResult r = read(*device, 512 * KiB, buf);
  EXPECT_EQ(r.error, EIO);
  EXPECT_NE(r.message.find(dir.file("shrinks.img")), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("offset 524288"), std::string::npos) << r.message;
}

// Many coroutines on two event loops hammer one device: every write lands where it should and
// nothing is lost or torn while flushes run in between.
TEST_F(FileBlockDeviceTest, ManyConcurrentCoroutinesOnSeveralThreads) {
  constexpr int kBlocks = 512;
  constexpr size_t kBlock = 4096;
  auto device = create("busy.img", kBlocks * kBlock);
  asio::io_context loops[2];
  std::atomic<int> failures{0};
  std::atomic<int> finished{0};
  auto worker = [&](int block) -> asio::awaitable<void> {
    auto data = random_bytes(kBlock, 1000 + block);
    uint64_t at = static_cast<uint64_t>(block) * kBlock;
    if (!(co_await device->write(at, data, block % 7 == 0)).ok()) ++failures;
    if (block % 16 == 0 && !(co_await device->flush()).ok()) ++failures;
    std::vector<std::byte> back(kBlock);
    if (!(co_await device->read(at, back)).ok() || back != data) ++failures;
    ++finished;
  };
  for (int b = 0; b < kBlocks; ++b) asio::co_spawn(loops[b % 2], worker(b), asio::detached);
  std::thread second([&] { loops[1].run_for(std::chrono::seconds(120)); });
  loops[0].run_for(std::chrono::seconds(120));
  second.join();
  EXPECT_EQ(finished.load(), kBlocks);
  EXPECT_EQ(failures.load(), 0);
  for (int b = 0; b < kBlocks; b += 37)
    EXPECT_EQ(read_back(*device, b * kBlock, kBlock), random_bytes(kBlock, 1000 + b));
}

}  // namespace
}  // namespace hydrate
