// The oracle decides what a clone may show after a cut or in a read; these pin its rules to
// DESIGN.md I4/I5 so a permissive oracle cannot hide engine bugs.
#include "tests/crash/content_oracle.h"

#include <gtest/gtest.h>

namespace hydrate::crash {
namespace {

using Kind = ContentOracle::Kind;

constexpr size_t kSize = 8192;

std::vector<std::byte> filled(size_t n, uint8_t value) {
  return std::vector<std::byte>(n, std::byte{value});
}

class Oracle : public ::testing::Test {
 protected:
  Oracle() : oracle(std::make_shared<const std::vector<std::byte>>(filled(kSize, 0x5a))) {}

  // A write of `value` bytes, issued and completed at the given journal seqs.
  void write(uint64_t offset, uint64_t length, uint8_t value, uint64_t issued, uint64_t completed,
             bool fua = false, bool ok = true) {
    ContentOracle::Mutation m;
    m.kind = Kind::write;
    m.offset = offset;
    m.length = length;
    m.issued = issued;
    m.completed = completed;
    m.ok = ok;
    m.fua = fua;
    m.data = std::make_shared<const std::vector<std::byte>>(filled(length, value));
    m.label = "write-" + std::to_string(int(value));
    oracle.add_mutation(m);
    if (fua) oracle.add_barrier({issued, completed, ok});
  }
  void other(Kind kind, uint64_t offset, uint64_t length, uint64_t issued, uint64_t completed) {
    ContentOracle::Mutation m;
    m.kind = kind;
    m.offset = offset;
    m.length = length;
    m.issued = issued;
    m.completed = completed;
    m.ok = true;
    m.label = kind == Kind::trim ? "trim" : "zero";
    oracle.add_mutation(m);
  }
  void flush(uint64_t issued, uint64_t completed) { oracle.add_barrier({issued, completed, true}); }
  bool allows(uint64_t offset, uint8_t value, size_t length, const ContentOracle::View& view) {
    auto bytes = filled(length, value);
    return !oracle.check(offset, bytes, view).has_value();
  }

  ContentOracle oracle;
};

TEST_F(Oracle, UntouchedBytesMustBeTheSource) {
  auto view = oracle.at_cut(100);
  EXPECT_TRUE(allows(0, 0x5a, kSize, view));
  EXPECT_FALSE(allows(0, 0x00, 512, view));
  auto mismatch = oracle.check(100, filled(10, 0x01), view);
  ASSERT_TRUE(mismatch);
  EXPECT_EQ(mismatch->offset, 100u);
  EXPECT_FALSE(mismatch->superseded);
  EXPECT_NE(mismatch->explanation.find("neither in the source"), std::string::npos);
}

TEST_F(Oracle, AnUnflushedWriteMayOrMayNotAppear) {
  write(0, 4096, 0x11, 1, 2);
  auto view = oracle.at_cut(10);
  EXPECT_TRUE(allows(0, 0x11, 4096, view));
  EXPECT_TRUE(allows(0, 0x5a, 4096, view));
}

TEST_F(Oracle, AFlushedWriteMustAppear) {
  write(0, 4096, 0x11, 1, 2);
  flush(3, 4);
  EXPECT_TRUE(allows(0, 0x5a, 4096, oracle.at_cut(4))) << "the flush had not completed";
  auto after = oracle.at_cut(5);
  EXPECT_TRUE(allows(0, 0x11, 4096, after));
  auto mismatch = oracle.check(0, filled(4096, 0x5a), after);
  ASSERT_TRUE(mismatch);
  EXPECT_TRUE(mismatch->superseded);
  EXPECT_NE(mismatch->explanation.find("superseded by write-17"), std::string::npos)
      << mismatch->explanation;
}

TEST_F(Oracle, AFlushIssuedBeforeTheWriteCompletedDoesNotCoverIt) {
  write(0, 4096, 0x11, 1, 4);
  flush(3, 5);
  EXPECT_TRUE(allows(0, 0x5a, 4096, oracle.at_cut(6)));
}

TEST_F(Oracle, FuaWritesAreDurableAndCoverEarlierWrites) {
  write(0, 4096, 0x11, 1, 2);
  write(4096, 4096, 0x22, 3, 4, /*fua=*/true);
  auto view = oracle.at_cut(5);
  EXPECT_FALSE(allows(4096, 0x5a, 4096, view));
  EXPECT_FALSE(allows(0, 0x5a, 4096, view))
      << "I4: FUA completes only when earlier writes are durable";
}

TEST_F(Oracle, ALaterDurableWriteSupersedesAnEarlierOne) {
  write(0, 4096, 0x11, 1, 2);
  write(0, 4096, 0x22, 3, 4);
  flush(5, 6);
  auto view = oracle.at_cut(7);
  EXPECT_TRUE(allows(0, 0x22, 4096, view));
  EXPECT_FALSE(allows(0, 0x11, 4096, view));
}

TEST_F(Oracle, ALaterUnflushedWriteMayAppearOverADurableOne) {
  write(0, 4096, 0x11, 1, 2);
  flush(3, 4);
  write(0, 4096, 0x22, 5, 6);
  auto view = oracle.at_cut(7);
  EXPECT_TRUE(allows(0, 0x11, 4096, view));
  EXPECT_TRUE(allows(0, 0x22, 4096, view));
  EXPECT_FALSE(allows(0, 0x5a, 4096, view));
}

TEST_F(Oracle, ConcurrentWritesMayLandInEitherOrder) {
  write(0, 4096, 0x11, 1, 4);
  write(0, 4096, 0x22, 2, 3);
  flush(5, 6);
  auto view = oracle.at_cut(7);
  EXPECT_TRUE(allows(0, 0x11, 4096, view));
  EXPECT_TRUE(allows(0, 0x22, 4096, view));
  EXPECT_FALSE(allows(0, 0x5a, 4096, view));
}

TEST_F(Oracle, WritesIssuedAfterTheCutAreForeign) {
  write(0, 4096, 0x11, 10, 11);
  EXPECT_FALSE(allows(0, 0x11, 4096, oracle.at_cut(10)));
  EXPECT_TRUE(allows(0, 0x11, 4096, oracle.at_cut(11)));
}

TEST_F(Oracle, TrimMayZeroButNeverForces) {
  write(0, 4096, 0x11, 1, 2);
  flush(3, 4);
  other(Kind::trim, 0, 4096, 5, 6);
  flush(7, 8);
  auto view = oracle.at_cut(9);
  EXPECT_TRUE(allows(0, 0x00, 4096, view));
  EXPECT_TRUE(allows(0, 0x11, 4096, view));
  EXPECT_FALSE(allows(0, 0x5a, 4096, view));
}

TEST_F(Oracle, DurableZeroesMustReadZero) {
  other(Kind::zeroes, 512, 1024, 1, 2);
  flush(3, 4);
  auto view = oracle.at_cut(5);
  EXPECT_TRUE(allows(512, 0x00, 1024, view));
  EXPECT_FALSE(allows(512, 0x5a, 1024, view));
  EXPECT_TRUE(allows(0, 0x5a, 512, view));
}

TEST_F(Oracle, UnalignedWritesAreJudgedByteByByte) {
  write(100, 300, 0x11, 1, 2);
  flush(3, 4);
  auto view = oracle.at_cut(5);
  std::vector<std::byte> sector = filled(512, 0x5a);
  std::fill(sector.begin() + 100, sector.begin() + 400, std::byte{0x11});
  EXPECT_FALSE(oracle.check(0, sector, view).has_value());
  sector[399] = std::byte{0x5a};
  auto mismatch = oracle.check(0, sector, view);
  ASSERT_TRUE(mismatch);
  EXPECT_EQ(mismatch->offset, 399u);
}

TEST_F(Oracle, AReadMustSeeWritesCompletedBeforeItWasIssued) {
  write(0, 4096, 0x11, 1, 2);
  // Issued after the write completed: the source is stale.
  EXPECT_FALSE(allows(0, 0x5a, 4096, oracle.for_read(3, 4)));
  EXPECT_TRUE(allows(0, 0x11, 4096, oracle.for_read(3, 4)));
  // Concurrent with it: either.
  EXPECT_TRUE(allows(0, 0x5a, 4096, oracle.for_read(1, 3)));
  // Completed before the write was issued: never the write.
  EXPECT_FALSE(allows(0, 0x11, 4096, oracle.for_read(0, 1)));
}

TEST_F(Oracle, FailedWritesMayHaveLandedButForceNothing) {
  write(0, 4096, 0x11, 1, 2, false, /*ok=*/false);
  flush(3, 4);
  auto view = oracle.at_cut(5);
  EXPECT_TRUE(allows(0, 0x11, 4096, view));
  EXPECT_TRUE(allows(0, 0x5a, 4096, view));
}

TEST_F(Oracle, TouchedSaysWhetherAnyVisibleMutationCoversARange) {
  write(1000, 10, 0x11, 5, 6);
  EXPECT_TRUE(oracle.touched(1005, 100, oracle.at_cut(10)));
  EXPECT_FALSE(oracle.touched(1005, 100, oracle.at_cut(5)));
  EXPECT_FALSE(oracle.touched(1010, 100, oracle.at_cut(10)));
}

}  // namespace
}  // namespace hydrate::crash
