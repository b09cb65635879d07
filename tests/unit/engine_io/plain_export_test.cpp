#include "engine/plain_export.h"

#include <gtest/gtest.h>

#include <cstring>

#include "engine/file_block_device.h"
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

// An in-memory device whose fast_zero() answer and allocation map a test chooses, recording
// which calls reached it.
class ScriptedDevice : public BlockDevice {
 public:
  explicit ScriptedDevice(uint64_t size) : bytes_(size) {}

  uint64_t size() const override { return bytes_.size(); }
  const std::string& name() const override { return name_; }
  asio::awaitable<IoResult> read(uint64_t offset, std::span<std::byte> out) override {
    reads.push_back(ByteRange{offset, out.size()});
    std::memcpy(out.data(), bytes_.data() + offset, out.size());
    co_return IoResult::success();
  }
  asio::awaitable<IoResult> write(uint64_t offset, std::span<const std::byte> data,
                                  bool fua) override {
    ++writes;
    if (fua) ++fua_writes;
    std::memcpy(bytes_.data() + offset, data.data(), data.size());
    co_return IoResult::success();
  }
  asio::awaitable<IoResult> flush() override {
    ++flushes;
    co_return IoResult::success();
  }
  asio::awaitable<IoResult> write_zeroes(uint64_t offset, uint64_t length,
                                         bool may_unmap) override {
    ++zeroes;
    last_may_unmap = may_unmap;
    std::memset(bytes_.data() + offset, 0, length);
    co_return IoResult::success();
  }
  asio::awaitable<IoResult> discard(uint64_t, uint64_t) override {
    ++discards;
    co_return IoResult::success();
  }
  asio::awaitable<IoResult> allocation(uint64_t, uint64_t length, ExtentList& out) override {
    if (!extents.empty()) {
      out.insert(out.end(), extents.begin(), extents.end());
    } else {
      out.push_back(Extent{length, 0});
    }
    co_return IoResult::success();
  }
  bool fast_zero() const override { return fast; }
  bool discard_zeroes() const override { return false; }

  bool fast = true;
  ExtentList extents;  // what allocation() answers, when set
  std::vector<ByteRange> reads;
  int writes = 0, fua_writes = 0, flushes = 0, zeroes = 0, discards = 0;
  bool last_may_unmap = false;

 private:
  std::string name_ = "scripted";
  std::vector<std::byte> bytes_;
};

class PlainExportTest : public ::testing::Test {
 protected:
  std::shared_ptr<PlainExport> make(uint64_t size, bool read_only = false) {
    device = std::make_shared<ScriptedDevice>(size);
    return std::make_shared<PlainExport>(device, PlainExportSettings{"disk0", "a disk", read_only});
  }

  std::shared_ptr<ScriptedDevice> device;
  asio::io_context context;
};

TEST_F(PlainExportTest, InfoDescribesAWritableExport) {
  auto e = make(1 * MiB);
  const ExportInfo& info = e->info();
  EXPECT_EQ(info.name, "disk0");
  EXPECT_EQ(info.description, "a disk");
  EXPECT_EQ(info.size, 1 * MiB);
  EXPECT_FALSE(info.read_only);
  EXPECT_TRUE(info.can_flush && info.can_fua && info.can_trim && info.can_zero);
  EXPECT_TRUE(info.can_fast_zero);
  EXPECT_TRUE(info.can_multi_conn);
  EXPECT_EQ(e->meta_contexts(), std::vector<std::string>{"base:allocation"});
}

TEST_F(PlainExportTest, ReadOnlyExportRefusesChangesWithEperm) {
  auto e = make(1 * MiB, /*read_only=*/true);
  const ExportInfo& info = e->info();
  EXPECT_TRUE(info.read_only);
  EXPECT_FALSE(info.can_trim || info.can_zero || info.can_fast_zero || info.can_fua);
  auto data = random_bytes(4096, 1);
  IoResult w = run_coroutine(context, e->write(8192, data, {}));
  IoResult t = run_coroutine(context, e->trim(8192, 4096, {}));
  IoResult z = run_coroutine(context, e->zero(8192, 4096, {}));
  for (const IoResult& r : {w, t, z}) {
    EXPECT_EQ(r.error, EPERM);
    EXPECT_NE(r.message.find("disk0"), std::string::npos) << r.message;
    EXPECT_NE(r.message.find("8192"), std::string::npos) << r.message;
  }
  EXPECT_EQ(device->writes + device->zeroes + device->discards, 0);
  std::vector<std::byte> buf(4096);
  EXPECT_TRUE(run_coroutine(context, e->read(0, buf, nullptr)).ok());
  EXPECT_TRUE(run_coroutine(context, e->flush()).ok());
}

TEST_F(PlainExportTest, FastZeroFailsWithEnotsupWhenTheDeviceCannotZeroFast) {
  auto e = make(1 * MiB);
  device->fast = false;
  auto slow = std::make_shared<PlainExport>(device, PlainExportSettings{"slow", "", false});
  EXPECT_FALSE(slow->info().can_fast_zero);
  ZeroFlags fast_only;
  fast_only.fast_only = true;
  IoResult r = run_coroutine(context, slow->zero(0, 4096, fast_only));
  EXPECT_EQ(r.error, ENOTSUP);
  EXPECT_NE(r.message.find("slow"), std::string::npos) << r.message;
  EXPECT_EQ(device->zeroes, 0);
  // Without FAST_ZERO the same request is served the slow way.
  EXPECT_TRUE(run_coroutine(context, slow->zero(0, 4096, {})).ok());
  EXPECT_EQ(device->zeroes, 1);
}

TEST_F(PlainExportTest, FlagsMapOntoTheDevice) {
  auto e = make(1 * MiB);
  auto data = random_bytes(4096, 2);
  ASSERT_TRUE(run_coroutine(context, e->write(0, data, WriteFlags{true})).ok());
  EXPECT_EQ(device->fua_writes, 1);

  ZeroFlags no_hole;
  no_hole.may_trim = false;
  no_hole.fua = true;
  ASSERT_TRUE(run_coroutine(context, e->zero(0, 4096, no_hole)).ok());
  EXPECT_FALSE(device->last_may_unmap);
  EXPECT_EQ(device->flushes, 1);  // FUA on a zero is a flush after it

  ASSERT_TRUE(run_coroutine(context, e->zero(0, 4096, {})).ok());
  EXPECT_TRUE(device->last_may_unmap);
  EXPECT_EQ(device->flushes, 1);

  ASSERT_TRUE(run_coroutine(context, e->trim(0, 4096, WriteFlags{true})).ok());
  EXPECT_EQ(device->discards, 1);
  EXPECT_EQ(device->flushes, 2);
  EXPECT_TRUE(run_coroutine(context, e->cache(0, 4096)).ok());
}

TEST_F(PlainExportTest, LargeReadSkipsHolesAndReportsThem) {
  auto e = make(1 * MiB);
  auto data = random_bytes(1 * MiB, 3);
  ASSERT_TRUE(run_coroutine(context, e->write(0, data, {})).ok());
  // The device claims [64K, 192K) and [256K, end) are holes (the fake still holds data there,
  // so a read that ignored the map would return it).
  device->extents = {{64 * KiB, 0}, {128 * KiB, kHole}, {64 * KiB, 0}, {768 * KiB, kHole}};
  device->reads.clear();
  std::vector<std::byte> out(1 * MiB, std::byte{0x77});
  std::vector<ByteRange> zeros;
  ASSERT_TRUE(run_coroutine(context, e->read(0, out, &zeros)).ok());
  EXPECT_EQ(zeros, (std::vector<ByteRange>{{64 * KiB, 128 * KiB}, {256 * KiB, 768 * KiB}}));
  EXPECT_EQ(device->reads, (std::vector<ByteRange>{{0, 64 * KiB}, {192 * KiB, 64 * KiB}}));
  EXPECT_TRUE(std::equal(out.begin(), out.begin() + 64 * KiB, data.begin()));
  EXPECT_TRUE(all_zero(std::span(out).subspan(64 * KiB, 128 * KiB)));
  EXPECT_TRUE(
      std::equal(out.begin() + 192 * KiB, out.begin() + 256 * KiB, data.begin() + 192 * KiB));
  EXPECT_TRUE(all_zero(std::span(out).subspan(256 * KiB)));
}

TEST_F(PlainExportTest, ShortOrUnaskedReadsDoNotLookForHoles) {
  auto e = make(1 * MiB);
  device->extents = {{1 * MiB, kHole}};
  std::vector<std::byte> small(4096);
  std::vector<ByteRange> zeros;
  ASSERT_TRUE(run_coroutine(context, e->read(0, small, &zeros)).ok());
  EXPECT_TRUE(zeros.empty());
  std::vector<std::byte> large(256 * KiB);
  ASSERT_TRUE(run_coroutine(context, e->read(0, large, nullptr)).ok());
  EXPECT_EQ(device->reads.size(), 2u);
}

TEST_F(PlainExportTest, BlockStatusHonoursMaxExtentsAndRejectsUnknownContexts) {
  auto e = make(1 * MiB);
  device->extents = {{64 * KiB, 0}, {64 * KiB, kHole}, {896 * KiB, 0}};
  ExtentList out;
  ASSERT_TRUE(run_coroutine(context, e->block_status(0, 0, 1 * MiB, 2, out)).ok());
  EXPECT_EQ(out, (ExtentList{{64 * KiB, 0}, {64 * KiB, kHole}}));
  out.clear();
  ASSERT_TRUE(run_coroutine(context, e->block_status(0, 0, 1 * MiB, 0, out)).ok());
  EXPECT_EQ(out.size(), 1u);  // at least one extent, whatever the bound
  IoResult r = run_coroutine(context, e->block_status(1, 0, 4096, 10, out));
  EXPECT_EQ(r.error, EINVAL);
}

// The same semantics on a real sparse file.
TEST(PlainExportOnFile, HolesOfASparseFileComeBackAsZeroRanges) {
  TempDir dir;
  std::string path = dir.file("sparse.img");
  asio::io_context context;
  // The pool is destroyed first: its threads still drop work guards on the context after
  // a call completes, so the context must outlive them.
  BlockingPool pool(2);
  {
    std::unique_ptr<FileBlockDevice> d;
    FileOpenOptions options;
    options.ensure_size = 4 * MiB;
    ASSERT_TRUE(FileBlockDevice::open(path, options, d).ok());
  }
  std::shared_ptr<PlainExport> e;
  IoResult r = PlainExport::open_file(path, {"sparse", "sparse file", false}, &pool, e);
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(e->info().size, 4 * MiB);
  EXPECT_TRUE(e->info().can_fast_zero);

  auto data = random_bytes(128 * KiB, 4);
  ASSERT_TRUE(run_coroutine(context, e->write(1 * MiB, data, {})).ok());
  std::vector<std::byte> out(2 * MiB);
  std::vector<ByteRange> zeros;
  ASSERT_TRUE(run_coroutine(context, e->read(0, out, &zeros)).ok());
  EXPECT_EQ(zeros, (std::vector<ByteRange>{{0, 1 * MiB}, {1 * MiB + 128 * KiB, 896 * KiB}}));
  EXPECT_TRUE(std::equal(data.begin(), data.end(), out.begin() + 1 * MiB));

  ZeroFlags fast;
  fast.fast_only = true;
  ASSERT_TRUE(run_coroutine(context, e->zero(1 * MiB, 64 * KiB, fast)).ok());
  ExtentList extents;
  ASSERT_TRUE(run_coroutine(context, e->block_status(0, 0, 4 * MiB, 100, extents)).ok());
  EXPECT_EQ(extents,
            (ExtentList{{1 * MiB + 64 * KiB, kHole}, {64 * KiB, 0}, {3 * MiB - 128 * KiB, kHole}}));
}

TEST(PlainExportOnFile, OpenFailureNamesExportAndPath) {
  std::shared_ptr<PlainExport> e;
  IoResult r = PlainExport::open_file("/nonexistent/dir/x.img", {"lost", "", true}, nullptr, e);
  EXPECT_EQ(r.error, ENOENT);
  EXPECT_NE(r.message.find("export 'lost'"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("/nonexistent/dir/x.img"), std::string::npos) << r.message;
  EXPECT_EQ(e, nullptr);
}

TEST(PlainExportOnFile, DeviceErrorsCarryTheExportName) {
  TempDir dir;
  std::string path = dir.file("small.img");
  {
    std::unique_ptr<FileBlockDevice> d;
    FileOpenOptions options;
    options.ensure_size = 64 * KiB;
    ASSERT_TRUE(FileBlockDevice::open(path, options, d).ok());
  }
  std::shared_ptr<PlainExport> e;
  ASSERT_TRUE(PlainExport::open_file(path, {"small", "", false}, nullptr, e).ok());
  asio::io_context context;
  std::vector<std::byte> buf(8192);
  IoResult r = run_coroutine(context, e->read(60 * KiB, buf, nullptr));
  EXPECT_EQ(r.error, EINVAL);
  EXPECT_NE(r.message.find("export 'small'"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find(path), std::string::npos) << r.message;
}

}  // namespace
}  // namespace hydrate
