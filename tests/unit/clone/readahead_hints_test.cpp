// ReadaheadHints: where the background copy goes next after a client's miss, and how far.
#include "engine/clone/readahead_hints.h"

#include <gtest/gtest.h>

namespace hydrate {
namespace {

using Range = ReadaheadHints::Range;

void expect_range(std::optional<Range> r, uint64_t first, uint64_t end) {
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->first, first);
  EXPECT_EQ(r->end, end);
}

TEST(ReadaheadHints, AMissStartsReadaheadRightAfterItAtTheInitialSize) {
  ReadaheadHints hints(4, 64, 1000);
  EXPECT_EQ(hints.note_miss(10, 12), 4u);
  expect_range(hints.take_newest(), 12, 16);
  EXPECT_FALSE(hints.take_newest().has_value());
}

// The reader streams: each miss lands in (or just after) the readahead the previous one
// started, so each readahead is twice the last, up to the maximum. Fails without the ramp.
TEST(ReadaheadHints, AStreamingReaderDoublesTheReadaheadUpToTheMaximum) {
  ReadaheadHints hints(4, 16, 1000);
  EXPECT_EQ(hints.note_miss(0, 2), 4u);     // readahead [2, 6)
  EXPECT_EQ(hints.note_miss(6, 8), 8u);     // right after it
  EXPECT_EQ(hints.note_miss(10, 11), 16u);  // inside [8, 16)
  EXPECT_EQ(hints.note_miss(20, 21), 16u);  // inside [11, 27): capped
  EXPECT_EQ(hints.note_miss(500, 501), 4u) << "a miss somewhere new starts small again";
}

TEST(ReadaheadHints, TheNewestMissGoesFirstAndOverlappedOlderHintsAreDropped) {
  ReadaheadHints hints(4, 4, 1000);
  hints.note_miss(100, 101);  // [101, 105)
  hints.note_miss(200, 201);  // [201, 205)
  hints.note_miss(102, 103);  // [103, 107) overlaps the first: it replaces it
  EXPECT_EQ(hints.size(), 2u);
  expect_range(hints.take_newest(), 103, 107);
  expect_range(hints.take_newest(), 201, 205);
}

TEST(ReadaheadHints, TheRestOfAHintIsPutBackUnlessANewerMissCoversIt) {
  ReadaheadHints hints(8, 8, 1000);
  hints.note_miss(0, 1);  // [1, 9)
  std::optional<Range> h = hints.take_newest();
  ASSERT_TRUE(h);
  hints.put_back({3, h->end});
  expect_range(hints.take_newest(), 3, 9);
  hints.note_miss(4, 5);  // [5, 13) arrives while [3, 9)'s batch is being planned
  hints.put_back({6, 9});
  EXPECT_EQ(hints.size(), 1u);
  expect_range(hints.take_newest(), 5, 13);
}

TEST(ReadaheadHints, ReadaheadStopsAtTheEndOfTheDevice) {
  ReadaheadHints hints(8, 8, 20);
  hints.note_miss(15, 18);
  expect_range(hints.take_newest(), 18, 20);
  EXPECT_EQ(hints.note_miss(18, 20), 0u) << "nothing after the last region";
  EXPECT_FALSE(hints.take_newest().has_value());
}

TEST(ReadaheadHints, OnlyTheLatestHintsAreKept) {
  ReadaheadHints hints(1, 1, 1u << 20);
  for (uint64_t i = 0; i < 2 * ReadaheadHints::kMaxHints; ++i) hints.note_miss(i * 10, i * 10 + 1);
  EXPECT_EQ(hints.size(), ReadaheadHints::kMaxHints);
  const uint64_t newest = (2 * ReadaheadHints::kMaxHints - 1) * 10 + 1;
  expect_range(hints.take_newest(), newest, newest + 1);
}

}  // namespace
}  // namespace hydrate
