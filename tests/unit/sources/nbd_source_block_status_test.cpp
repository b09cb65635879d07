#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "tests/unit/sources/source_test_support.h"

namespace hydrate::test {
namespace {

class NbdSourceBlockStatus : public SourceTest {};

struct Range {
  uint64_t offset;
  uint64_t length;
  bool data;
  bool operator==(const Range&) const = default;
};

// What the kernel says about a file, by SEEK_DATA / SEEK_HOLE.
std::vector<Range> seek_ground_truth(const std::string& path) {
  std::vector<Range> out;
  const int fd = ::open(path.c_str(), O_RDONLY);
  const off_t size = ::lseek(fd, 0, SEEK_END);
  off_t pos = 0;
  while (pos < size) {
    off_t data = ::lseek(fd, pos, SEEK_DATA);
    if (data < 0) data = size;
    if (data > pos)
      out.push_back({static_cast<uint64_t>(pos), static_cast<uint64_t>(data - pos), false});
    if (data >= size) break;
    off_t hole = ::lseek(fd, data, SEEK_HOLE);
    out.push_back({static_cast<uint64_t>(data), static_cast<uint64_t>(hole - data), true});
    pos = hole;
  }
  ::close(fd);
  return out;
}

// Extents as ranges, adjacent ones of the same kind merged.
std::vector<Range> as_ranges(uint64_t offset, const ExtentList& extents) {
  std::vector<Range> out;
  for (const Extent& e : extents) {
    const bool data = (e.flags & kAllocationHole) == 0;
    if (!out.empty() && out.back().data == data) {
      out.back().length += e.length;
    } else {
      out.push_back({offset, e.length, data});
    }
    offset += e.length;
  }
  return out;
}

TEST_F(NbdSourceBlockStatus, MatchesSeekDataOnASparseFile) {
  const std::string image = dir_.file("sparse.raw");
  {
    const int fd = ::open(image.c_str(), O_CREAT | O_WRONLY, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, 64 << 20), 0);
    const auto data = random_bytes(1 << 20, 3);
    for (uint64_t at : {uint64_t{0}, uint64_t{5} << 20, uint64_t{6} << 20, uint64_t{40} << 20,
                        uint64_t{63} << 20})
      ASSERT_EQ(::pwrite(fd, data.data(), data.size(), static_cast<off_t>(at)),
                static_cast<ssize_t>(data.size()));
    ::close(fd);
  }
  const auto truth = seek_ground_truth(image);
  ASSERT_GT(truth.size(), 4u) << "the file system keeps no holes here";

  NbdkitServer server(dir_.path() / "srv", {"file", image});
  auto source = make_nbd_source(server.uri());
  open_or_fail(*source);
  ExtentList extents;
  uint64_t offset = 0;
  while (offset < source->size()) {
    ExtentList more;
    IoResult r = run(source->block_status(offset, source->size() - offset, more));
    ASSERT_TRUE(r.ok()) << r.message;
    ASSERT_FALSE(more.empty());
    for (const Extent& e : more) offset += e.length;
    extents.insert(extents.end(), more.begin(), more.end());
  }
  EXPECT_EQ(offset, source->size());
  EXPECT_EQ(as_ranges(0, extents), truth);

  // A range in the middle starts exactly at its offset and never runs past its end.
  ExtentList middle;
  ASSERT_TRUE(run(source->block_status((5u << 20) + 4096, 2u << 20, middle)).ok());
  EXPECT_EQ(
      as_ranges((5u << 20) + 4096, middle),
      (std::vector<Range>{{(5u << 20) + 4096, (2u << 20) - 4096, true}, {7u << 20, 4096, false}}));
  run(source->close());
}

// The background scanner asks for huge ranges so a whole map arrives in a few round trips.
TEST_F(NbdSourceBlockStatus, WholeGigabyteMapInFewCalls) {
  NbdkitServer server(dir_.path(),
                      {"sparse-random", "1G", "seed=9", "percent=20", "runlength=1048576"});
  auto source = make_nbd_source(server.uri());
  open_or_fail(*source);
  uint64_t offset = 0;
  uint64_t data_bytes = 0;
  size_t extents = 0;
  ExtentList all;
  while (offset < source->size()) {
    ExtentList more;
    IoResult r = run(source->block_status(offset, uint64_t{2} << 30, more));
    ASSERT_TRUE(r.ok()) << r.message;
    for (const Extent& e : more) {
      offset += e.length;
      if (!(e.flags & kAllocationHole)) data_bytes += e.length;
    }
    extents += more.size();
    all.insert(all.end(), more.begin(), more.end());
  }
  EXPECT_EQ(offset, 1u << 30);
  EXPECT_LE(source->stats().block_status_calls, 4u);
  EXPECT_GT(extents, 50u);  // a real map, not "everything is data"
  EXPECT_GT(data_bytes, 100u << 20);
  EXPECT_LT(data_bytes, 400u << 20);

  // Holes read as zeros, and the data of some extent does not.
  uint64_t at = 0;
  int holes_checked = 0;
  for (const Extent& e : all) {
    if ((e.flags & kAllocationZero) && holes_checked < 5) {
      std::vector<std::byte> buffer(std::min<uint64_t>(e.length, 1 << 20));
      ASSERT_TRUE(run(source->read(at, buffer)).ok());
      EXPECT_TRUE(all_zero(buffer)) << "hole at " << at;
      ++holes_checked;
    }
    at += e.length;
  }
  EXPECT_EQ(holes_checked, 5);
  run(source->close());
}

// A server without base:allocation: everything is reported as data, without asking it.
TEST_F(NbdSourceBlockStatus, ReportsDataWhenTheServerHasNoAllocationContext) {
  NbdkitServer server(dir_.path(), {"--filter=noextents", "sparse-random", "64M"});
  auto source = make_nbd_source(server.uri());
  open_or_fail(*source);
  ExtentList extents;
  ASSERT_TRUE(run(source->block_status(4096, 1 << 20, extents)).ok());
  EXPECT_EQ(extents, (ExtentList{{1 << 20, 0}}));
  run(source->close());
}

}  // namespace
}  // namespace hydrate::test
