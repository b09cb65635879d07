#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>

#include "engine/file_block_device.h"
#include "tests/support/run_coroutine.h"
#include "tests/unit/engine_io/io_test_util.h"

// The block-device path of FileBlockDevice (BLKGETSIZE64, BLKZEROOUT, BLKDISCARD, all-data
// allocation) on a loop device. Needs root and losetup; skipped cleanly without them.
namespace hydrate {
namespace {

using test::all_zero;
using test::random_bytes;
using test::run_coroutine;
using test::TempDir;

constexpr uint64_t kSize = 8 << 20;

std::string run_command(const std::string& command, int& status) {
  std::string output;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    status = -1;
    return output;
  }
  std::array<char, 256> buf{};
  while (std::fgets(buf.data(), buf.size(), pipe)) output += buf.data();
  status = ::pclose(pipe);
  while (!output.empty() && (output.back() == '\n' || output.back() == ' ')) output.pop_back();
  return output;
}

class LoopDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "loop devices need root";
    backing_ = dir_.file("backing.img");
    {
      std::unique_ptr<FileBlockDevice> file;
      FileOpenOptions options;
      options.ensure_size = kSize;
      ASSERT_TRUE(FileBlockDevice::open(backing_, options, file).ok());
    }
    int status = 0;
    loop_ = run_command("timeout 30 losetup --find --show " + backing_ + " 2>/dev/null", status);
    if (status != 0 || loop_.rfind("/dev/loop", 0) != 0) {
      loop_.clear();
      GTEST_SKIP() << "losetup is unavailable here";
    }
    // Detaching a loop device that is open only marks it to detach on last close: holding a
    // descriptor keeps it usable for the test, and a crashed test cannot leak the device.
    holder_ = ::open(loop_.c_str(), O_RDONLY | O_CLOEXEC);
    run_command("timeout 30 losetup -d " + loop_, status);
    ASSERT_GE(holder_, 0) << "cannot open " << loop_;
  }
  void TearDown() override {
    if (holder_ >= 0) ::close(holder_);
  }

  TempDir dir_;
  std::string backing_;
  std::string loop_;
  int holder_ = -1;
  asio::io_context context_;
  // The pool is destroyed first: its threads still drop work guards on the context after
  // a call completes, so the context must outlive them.
  BlockingPool pool_{4};
};

TEST_F(LoopDeviceTest, ReadWriteZeroDiscardAndAllocation) {
  std::unique_ptr<FileBlockDevice> device;
  FileOpenOptions options;
  options.pool = &pool_;
  IoResult r = FileBlockDevice::open(loop_, options, device);
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_TRUE(device->is_block_device());
  EXPECT_EQ(device->size(), kSize);
  EXPECT_FALSE(device->discard_zeroes());

  auto data = random_bytes(kSize, 21);
  ASSERT_TRUE(run_coroutine(context_, device->write(0, data, false)).ok());
  ASSERT_TRUE(run_coroutine(context_, device->flush()).ok());
  std::vector<std::byte> back(kSize);
  ASSERT_TRUE(run_coroutine(context_, device->read(0, back)).ok());
  EXPECT_EQ(back, data);

  // Unaligned ends exercise the zero-buffer edges around the BLKZEROOUT middle.
  for (bool unmap : {false, true}) {
    uint64_t at = unmap ? 3'000'001 : 1'000'001;
    ASSERT_TRUE(run_coroutine(context_, device->write_zeroes(at, 1'000'000, unmap)).ok());
    std::vector<std::byte> zeros(1'000'002);
    ASSERT_TRUE(run_coroutine(context_, device->read(at - 1, zeros)).ok());
    EXPECT_NE(zeros.front(), std::byte{0});
    EXPECT_NE(zeros.back(), std::byte{0});
    EXPECT_TRUE(all_zero(std::span(zeros).subspan(1, 1'000'000))) << "unmap=" << unmap;
  }
  ASSERT_TRUE(run_coroutine(context_, device->discard(6 << 20, 1 << 20)).ok());

  ExtentList extents;
  ASSERT_TRUE(run_coroutine(context_, device->allocation(4096, 8192, extents)).ok());
  EXPECT_EQ(extents, (ExtentList{{8192, 0}}));

  ASSERT_TRUE(run_coroutine(context_, device->flush()).ok());
  device.reset();
  // The zeroes went through the loop device to the backing file.
  std::vector<std::byte> on_file(16);
  int fd = ::open(backing_.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pread(fd, on_file.data(), on_file.size(), 1'000'001 + 4096), 16);
  ::close(fd);
  EXPECT_TRUE(all_zero(on_file));
}

TEST_F(LoopDeviceTest, TooSmallDeviceForEnsureSizeIsRefused) {
  std::unique_ptr<FileBlockDevice> device;
  FileOpenOptions options;
  options.ensure_size = kSize * 2;
  IoResult r = FileBlockDevice::open(loop_, options, device);
  EXPECT_EQ(r.error, ENOSPC);
  EXPECT_NE(r.message.find(loop_), std::string::npos) << r.message;
}

}  // namespace
}  // namespace hydrate
