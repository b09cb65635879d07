// The fake other unit tests rely on: its semantics must hold before it can prove anything.
#include "tests/support/memory_block_device.h"

#include <gtest/gtest.h>

#include <vector>

#include "tests/unit/metadata/metadata_test_util.h"

namespace hydrate::test {
namespace {

using Op = MemoryBlockDevice::Operation;
using Logged = MemoryBlockDevice::LoggedOperation;

std::vector<std::byte> bytes(std::initializer_list<int> values) {
  std::vector<std::byte> out;
  for (int v : values) out.push_back(static_cast<std::byte>(v));
  return out;
}

TEST(MemoryBlockDevice, WritesAreVisibleToReadsAndCounted) {
  MemoryBlockDevice device(16, "mem0");
  EXPECT_EQ(device.size(), 16u);
  EXPECT_EQ(device.name(), "mem0");
  ASSERT_TRUE(run_to_completion(device.write(4, bytes({1, 2, 3}), true)));
  std::vector<std::byte> out(5);
  ASSERT_TRUE(run_to_completion(device.read(3, out)));
  EXPECT_EQ(out, bytes({0, 1, 2, 3, 0}));
  ASSERT_TRUE(run_to_completion(device.flush()));
  ASSERT_TRUE(run_to_completion(device.write_zeroes(5, 1, false)));
  ASSERT_TRUE(run_to_completion(device.discard(0, 2)));
  EXPECT_EQ(device.contents()[5], std::byte{0});
  EXPECT_EQ(device.contents()[4], std::byte{1});
  EXPECT_EQ(device.reads(), 1u);
  EXPECT_EQ(device.writes(), 1u);
  EXPECT_EQ(device.flushes(), 1u);
  EXPECT_EQ(device.count(Op::write_zeroes), 1u);
  EXPECT_EQ(device.log(), (std::vector<Logged>{{Op::write, 4, 3, true},
                                               {Op::flush, 0, 0, false},
                                               {Op::write_zeroes, 5, 1, false},
                                               {Op::discard, 0, 2, false}}));
}

TEST(MemoryBlockDevice, OutOfRangeRequestsFailWithEINVALNamingTheDevice) {
  MemoryBlockDevice device(16, "mem1");
  IoResult result = run_to_completion(device.write(15, bytes({1, 2}), false));
  EXPECT_EQ(result.error, EINVAL);
  EXPECT_TRUE(contains(result.message, "mem1: write at offset 15 length 2")) << result.message;
  std::vector<std::byte> out(1);
  EXPECT_EQ(run_to_completion(device.read(16, out)).error, EINVAL);
  EXPECT_EQ(run_to_completion(device.write_zeroes(~0ull, 2, false)).error, EINVAL);
  EXPECT_TRUE(device.log().empty());
}

TEST(MemoryBlockDevice, FailOnceFailsOnlyTheNthOperationOfThatKindAndChangesNothing) {
  MemoryBlockDevice device(16);
  device.fail_once(Op::write, 2, EIO);
  EXPECT_TRUE(run_to_completion(device.flush()));  // other kinds do not count
  EXPECT_TRUE(run_to_completion(device.write(0, bytes({1}), false)));
  IoResult failed = run_to_completion(device.write(1, bytes({2}), false));
  EXPECT_EQ(failed.error, EIO);
  EXPECT_TRUE(contains(failed.message, "injected write failure at offset 1")) << failed.message;
  EXPECT_EQ(device.contents()[1], std::byte{0});
  EXPECT_TRUE(run_to_completion(device.write(2, bytes({3}), false)));
  EXPECT_EQ(device.writes(), 3u);
}

TEST(MemoryBlockDevice, TornWriteLandsOnlyItsPrefix) {
  MemoryBlockDevice device(8);
  device.fail_once(Op::write, 1, EIO, 2);
  EXPECT_FALSE(run_to_completion(device.write(0, bytes({1, 2, 3, 4}), false)));
  EXPECT_EQ(device.contents(), bytes({1, 2, 0, 0, 0, 0, 0, 0}));
  EXPECT_TRUE(device.log().empty());
}

TEST(MemoryBlockDevice, FailFromUnplugsEveryLaterMutationButKeepsReads) {
  MemoryBlockDevice device(8);
  device.fail_from(Op::flush, 1, ENXIO);
  EXPECT_TRUE(run_to_completion(device.write(0, bytes({1}), false)));
  EXPECT_EQ(run_to_completion(device.flush()).error, ENXIO);
  EXPECT_EQ(run_to_completion(device.write(1, bytes({1}), false)).error, ENXIO);
  EXPECT_EQ(run_to_completion(device.discard(0, 1)).error, ENXIO);
  std::vector<std::byte> out(1);
  EXPECT_TRUE(run_to_completion(device.read(0, out)));
  EXPECT_EQ(out[0], std::byte{1});
  device.clear_faults();
  EXPECT_TRUE(run_to_completion(device.flush()));
}

TEST(MemoryBlockDevice, AllocationReportsOneDataExtentClippedToTheDevice) {
  MemoryBlockDevice device(100);
  ExtentList out;
  ASSERT_TRUE(run_to_completion(device.allocation(40, 1000, out)));
  EXPECT_EQ(out, (ExtentList{{60, 0}}));
  EXPECT_EQ(run_to_completion(device.allocation(100, 1, out)).error, EINVAL);
}

TEST(MemoryBlockDevice, ResizeAndSetContentsBypassTheLog) {
  MemoryBlockDevice device(4);
  device.set_contents(2, bytes({9, 9, 9}));
  EXPECT_EQ(device.size(), 5u);
  device.resize(3);
  EXPECT_EQ(device.contents(), bytes({0, 0, 9}));
  EXPECT_TRUE(device.log().empty());
  EXPECT_EQ(device.writes(), 0u);
}

}  // namespace
}  // namespace hydrate::test
