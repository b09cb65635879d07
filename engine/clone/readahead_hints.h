#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>

namespace hydrate {

// Where clients are reading now, for the background copy to go next (DESIGN §5, "follow the
// reader"). A client miss over regions [first, end) says the regions just after it are likely
// read soon (the rest of a file, the next directory blocks): copying them ahead of the main
// walk turns the reader's next misses into hits. Nothing fetched this way is wasted, since the
// background copies every region once anyway; only the order changes, and what the readahead
// takes from the link the clients' own reads do not get, so its size follows the reader, as
// the kernel's on-demand readahead does: a miss anywhere new gets the initial size; a miss
// inside or right after an earlier readahead (the reader is streaming and caught up with it)
// gets twice that one's size, up to the maximum.
//
// Thread-safe: note_miss() runs on client connections' threads, take_newest()/put_back() on the
// hydrator's executor.
class ReadaheadHints {
 public:
  struct Range {
    uint64_t first = 0;  // regions [first, end)
    uint64_t end = 0;
  };

  // Hints beyond this are dropped oldest first: a reader has moved on from them.
  static constexpr size_t kMaxHints = 16;

  // Sizes in regions; `limit` is the region count.
  ReadaheadHints(uint64_t initial, uint64_t max, uint64_t limit);

  // A client miss fetched regions [first, end); returns the size of the readahead it started.
  // Older hints that overlap the new one are dropped.
  uint64_t note_miss(uint64_t first, uint64_t end);
  // Removes and returns the newest hint, or nothing.
  std::optional<Range> take_newest();
  // Returns the unclaimed rest of a hint taken by take_newest(), as the newest again, unless
  // a newer miss overlapping it arrived meanwhile.
  void put_back(Range rest);
  size_t size() const;

 private:
  struct Started {
    uint64_t first = 0;  // the readahead a miss started: regions [first, end)
    uint64_t end = 0;
    uint64_t size = 0;
  };

  const uint64_t initial_;
  const uint64_t max_;
  const uint64_t limit_;
  mutable std::mutex mutex_;
  std::deque<Range> hints_;      // oldest first; what is left to copy
  std::deque<Started> started_;  // oldest first; the last readaheads whole, for the ramp
};

}  // namespace hydrate
