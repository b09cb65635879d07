#include "engine/sources/file_source.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "tests/unit/sources/source_test_support.h"

namespace hydrate::test {
namespace {

class FileSourceTest : public SourceTest {
 protected:
  // 16 MiB with data at [1 MiB, 2 MiB) and [8 MiB, 8 MiB + 64 KiB); holes elsewhere.
  std::string make_sparse_file(std::vector<std::byte>& expected) {
    const std::string path = dir_.file("base.img");
    expected.assign(16u << 20, std::byte{0});
    const int fd = ::open(path.c_str(), O_CREAT | O_WRONLY, 0600);
    EXPECT_EQ(::ftruncate(fd, 16 << 20), 0);
    for (auto [at, length] : {std::pair<uint64_t, size_t>{1u << 20, 1u << 20},
                              std::pair<uint64_t, size_t>{8u << 20, 64u << 10}}) {
      auto data = random_bytes(length, static_cast<uint32_t>(at));
      EXPECT_EQ(::pwrite(fd, data.data(), length, static_cast<off_t>(at)),
                static_cast<ssize_t>(length));
      std::copy(data.begin(), data.end(), expected.begin() + static_cast<ptrdiff_t>(at));
    }
    ::close(fd);
    return path;
  }
};

TEST_F(FileSourceTest, ReadsStatusAndIdentity) {
  std::vector<std::byte> expected;
  const std::string path = make_sparse_file(expected);
  const std::string link = dir_.file("link-to-base.img");
  std::filesystem::create_symlink(path, link);

  FileSource source(link);
  open_or_fail(source);
  EXPECT_EQ(source.size(), 16u << 20);
  EXPECT_EQ(source.identity(), "file:" + std::filesystem::canonical(path).string());
  EXPECT_FALSE(source.can_discard());

  std::vector<std::byte> buffer(expected.size());
  ASSERT_TRUE(run(source.read(0, buffer)).ok());
  EXPECT_TRUE(buffer == expected);
  std::vector<std::byte> part(100);
  ASSERT_TRUE(run(source.read((1u << 20) - 50, part)).ok());
  EXPECT_TRUE(std::equal(part.begin(), part.end(), expected.begin() + (1 << 20) - 50));

  ExtentList extents;
  ASSERT_TRUE(run(source.block_status(0, 16u << 20, extents)).ok());
  uint64_t at = 0;
  for (const Extent& e : extents) {
    const bool hole = e.flags & kAllocationHole;
    // A hole really reads as zero; data extents cover both written ranges.
    if (hole) {
      EXPECT_TRUE(all_zero(std::span(expected).subspan(at, e.length))) << "hole at " << at;
    }
    at += e.length;
  }
  EXPECT_EQ(at, 16u << 20);
  EXPECT_GE(extents.size(), 3u);
  // A range past the end is clipped there (scanners ask for huge ranges).
  ExtentList tail;
  ASSERT_TRUE(run(source.block_status(15u << 20, uint64_t{1} << 30, tail)).ok());
  uint64_t tail_length = 0;
  for (const Extent& e : tail) tail_length += e.length;
  EXPECT_EQ(tail_length, 1u << 20);

  SourceStats stats = source.stats();
  EXPECT_EQ(stats.reads, 2u);
  EXPECT_EQ(stats.block_status_calls, 2u);
  EXPECT_TRUE(stats.connected);

  IoResult beyond = run(source.read((16u << 20) - 10, part));
  EXPECT_EQ(beyond.error, EINVAL);
  EXPECT_NE(beyond.message.find(path), std::string::npos) << beyond.message;
  EXPECT_EQ(run(source.discard(0, 4096)).error, EPERM);

  run(source.close());
  EXPECT_EQ(run(source.read(0, part)).error, ESHUTDOWN);
}

TEST_F(FileSourceTest, MissingFileNamesThePath) {
  FileSource source(dir_.file("missing.img"));
  IoResult r = run(source.open());
  EXPECT_EQ(r.error, ENOENT);
  EXPECT_NE(r.message.find("missing.img"), std::string::npos) << r.message;
}

}  // namespace
}  // namespace hydrate::test
