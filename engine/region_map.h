#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "engine/extent.h"
#include "engine/region_size.h"

namespace hydrate {

// Which regions of a clone are valid on the destination (DESIGN.md §1, §3). One bit per region
// in memory, plus the set of bits set since the last commit began, so a commit writes exactly
// the bits whose data the preceding destination flush covered (I2) — never a bit set after it.
//
// Thread-safety: test(), hydrated_regions(), find_*() and run_length() are lock-free and may run
// on any thread. set(), begin_commit(), finish_commit() and load() serialise on an internal
// mutex. Within one generation bits only go 0 -> 1 (I3); there is no clear().
class RegionMap {
 public:
  // Bits set during one transaction, as (64-bit word index, bits newly set in that word),
  // sorted by word index. Word w covers regions [64w, 64w + 64).
  struct Transaction {
    std::vector<std::pair<uint64_t, uint64_t>> words;
    uint64_t regions = 0;  // number of bits in `words`
    bool empty() const { return words.empty(); }
  };

  static constexpr uint32_t kMinRegionSize = hydrate::kMinRegionSize;  // engine/region_size.h
  static constexpr uint32_t kMaxRegionSize = hydrate::kMaxRegionSize;
  // Bounds memory (three bits per region at most) and the on-disk bitmap (512 MiB).
  static constexpr uint64_t kMaxRegions = uint64_t{1} << 32;

  // `region_size` passes valid_region_size(); the last region may be short. Throws
  // std::invalid_argument naming the value when the region size is not allowed or the device
  // would need more than kMaxRegions regions (callers validate user input before this).
  RegionMap(uint64_t device_size, uint32_t region_size);

  uint64_t device_size() const { return device_size_; }
  uint32_t region_size() const { return region_size_; }
  unsigned region_shift() const { return region_shift_; }
  uint64_t region_count() const { return region_count_; }
  uint64_t word_count() const { return (region_count_ + 63) / 64; }

  uint64_t region_of(uint64_t offset) const { return offset >> region_shift_; }
  // Byte range of one region (the last one is clipped to the device size).
  ByteRange region_range(uint64_t region) const;
  // Byte range of regions [first, first + count), clipped to the device size. count > 0.
  ByteRange byte_range(uint64_t first, uint64_t count) const;
  // Regions touched by [offset, offset + length): [first, last).
  std::pair<uint64_t, uint64_t> regions_touching(uint64_t offset, uint64_t length) const;
  // Regions lying wholly inside [offset, offset + length): [first, last), empty when none. The
  // short last region counts as inside when the range reaches the device end. What a TRIM or a
  // source hole may hydrate without data: a partial region still holds bytes outside the range.
  std::pair<uint64_t, uint64_t> regions_inside(uint64_t offset, uint64_t length) const;

  // Region numbers at or past region_count() read as clear and are ignored by set().
  bool test(uint64_t region) const;
  // True when every region in [first, first + count) is set (false if the range runs past
  // region_count()).
  bool all_set(uint64_t first, uint64_t count) const;
  uint64_t hydrated_regions() const { return hydrated_.load(std::memory_order_relaxed); }
  bool complete() const { return hydrated_regions() == region_count_; }

  // First region >= from whose bit is clear (resp. set); region_count() when none.
  uint64_t find_first_clear(uint64_t from) const;
  uint64_t find_first_set(uint64_t from) const;
  // Number of consecutive regions from `first` (at most `max`) sharing test(first)'s state.
  uint64_t run_length(uint64_t first, uint64_t max) const;

  // Marks [first, first + count) valid. I1: the caller has completed the destination write of
  // every byte of these regions (or learned they need none). Bits already set are ignored.
  // Returns how many bits changed 0 -> 1; those join the current transaction.
  uint64_t set(uint64_t first, uint64_t count);

  // Phase one of a commit: the current transaction becomes the committing one and a new empty
  // transaction starts. Bits set after this call belong to the next commit. Must be followed by
  // finish_commit() (success or failure) before the next begin_commit().
  Transaction begin_commit();
  // Bits in the open transaction: a commit would have something to write when non-zero.
  uint64_t transaction_regions() const;
  // Phase two done: `committed` = true records the transaction as durable. On failure its
  // bits stay set in memory but are merged back into the current transaction so the next
  // commit retries them.
  void finish_commit(Transaction transaction, bool committed);

  // Bits that were durable when the map was loaded or last committed, word by word; what the
  // on-disk bitmap must hold.
  uint64_t committed_word(uint64_t word) const;
  uint64_t committed_regions() const;

  // Restores a committed map from metadata (as committed state, no transaction). `words` has
  // word_count() entries; bits past region_count() must be zero.
  void load(std::span<const uint64_t> words);

  // Appends extents of the `hydrate:state` context from `offset` up to `length` bytes, clipped
  // to the device size (nothing when `offset` is at or past it): kStateHydrated for runs of
  // set regions, 0 otherwise; at most `max_extents` of them.
  void state_extents(uint64_t offset, uint64_t length, size_t max_extents, ExtentList& out) const;

 private:
  // The open transaction is a sparse bitmap in pages of 512 words (32 Ki regions), allocated on
  // first touch: scattered single-region sets cost one page each, a whole-device range costs
  // one pass over the words, and an idle map holds no pages at all.
  static constexpr uint64_t kPageWords = 512;
  struct TransactionPage {
    uint64_t nonzero[kPageWords / 64] = {};  // which of `bits` are non-zero
    uint64_t bits[kPageWords] = {};
  };

  uint64_t word_value(uint64_t word) const { return live_[word].load(std::memory_order_acquire); }
  // First region in [from, limit) whose bit equals `set`; `limit` when none. limit <= count.
  uint64_t find_first(uint64_t from, uint64_t limit, bool set) const;
  // Adds `bits` of `word` to the open transaction; returns how many were new to it.
  uint64_t add_to_transaction(uint64_t word, uint64_t bits);

  uint64_t device_size_;
  uint32_t region_size_;
  unsigned region_shift_;
  uint64_t region_count_;
  // Live map: written only under mutex_, read lock-free (release/acquire pairs with I1's
  // "data first, then bit").
  std::unique_ptr<std::atomic<uint64_t>[]> live_;
  // Durable map: written only under mutex_ by finish_commit()/load(); atomic so readers on
  // other threads (status, commit) never race with them.
  std::unique_ptr<std::atomic<uint64_t>[]> committed_;
  std::atomic<uint64_t> hydrated_{0};
  std::atomic<uint64_t> committed_count_{0};

  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<TransactionPage>> current_;  // one slot per page of words
  uint64_t current_regions_ = 0;
  bool committing_ = false;
};

}  // namespace hydrate
