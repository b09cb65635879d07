#include "engine/region_map.h"

#include <algorithm>
#include <bit>
#include <stdexcept>
#include <string>

namespace hydrate {

namespace {

constexpr uint64_t kAllBits = ~uint64_t{0};

// Bits [from, to) of one word, 0 <= from < to <= 64.
uint64_t bit_range(unsigned from, unsigned to) {
  uint64_t upper = to == 64 ? kAllBits : (uint64_t{1} << to) - 1;
  return upper & (kAllBits << from);
}

}  // namespace

RegionMap::RegionMap(uint64_t device_size, uint32_t region_size)
    : device_size_(device_size), region_size_(region_size) {
  if (!valid_region_size(region_size))
    throw std::invalid_argument("region size " + std::to_string(region_size) + " " +
                                region_size_problem(region_size));
  region_shift_ = static_cast<unsigned>(std::countr_zero(region_size));
  region_count_ = (device_size >> region_shift_) + ((device_size & (region_size - 1)) ? 1 : 0);
  if (region_count_ > kMaxRegions)
    throw std::invalid_argument("device size " + std::to_string(device_size) + " at region size " +
                                std::to_string(region_size) + " needs " +
                                std::to_string(region_count_) + " regions, more than the limit " +
                                std::to_string(kMaxRegions));
  const uint64_t words = word_count();
  live_ = std::make_unique<std::atomic<uint64_t>[]>(words);
  committed_ = std::make_unique<std::atomic<uint64_t>[]>(words);
  for (uint64_t w = 0; w < words; ++w) {
    live_[w].store(0, std::memory_order_relaxed);
    committed_[w].store(0, std::memory_order_relaxed);
  }
  current_.resize((words + kPageWords - 1) / kPageWords);
}

ByteRange RegionMap::region_range(uint64_t region) const {
  uint64_t offset = region << region_shift_;
  if (region >= region_count_) return ByteRange{device_size_, 0};
  return ByteRange{offset, std::min<uint64_t>(region_size_, device_size_ - offset)};
}

ByteRange RegionMap::byte_range(uint64_t first, uint64_t count) const {
  ByteRange a = region_range(first);
  ByteRange b = region_range(first + count - 1);
  return ByteRange{a.offset, b.end() - a.offset};
}

std::pair<uint64_t, uint64_t> RegionMap::regions_inside(uint64_t offset, uint64_t length) const {
  if (length == 0 || offset >= device_size_) return {region_count_, region_count_};
  const uint64_t end = offset + std::min(length, device_size_ - offset);
  const uint64_t first = (offset + region_size_ - 1) >> region_shift_;
  const uint64_t last = end == device_size_ ? region_count_ : (end >> region_shift_);
  return first < last ? std::pair{first, last} : std::pair{first, first};
}

std::pair<uint64_t, uint64_t> RegionMap::regions_touching(uint64_t offset, uint64_t length) const {
  uint64_t first = std::min(offset >> region_shift_, region_count_);
  if (length == 0 || offset >= device_size_) return {first, first};
  uint64_t end = offset + std::min(length, device_size_ - offset);
  uint64_t last = (end >> region_shift_) + ((end & (region_size_ - 1)) ? 1 : 0);
  return {first, std::min(last, region_count_)};
}

bool RegionMap::test(uint64_t region) const {
  if (region >= region_count_) return false;
  return (word_value(region / 64) >> (region % 64)) & 1;
}

bool RegionMap::all_set(uint64_t first, uint64_t count) const {
  if (first > region_count_ || count > region_count_ - first) return false;
  return find_first(first, first + count, false) == first + count;
}

uint64_t RegionMap::find_first(uint64_t from, uint64_t limit, bool set) const {
  if (from >= limit) return limit;
  uint64_t word = from / 64;
  const uint64_t last_word = (limit - 1) / 64;
  uint64_t bits = word_value(word);
  if (!set) bits = ~bits;
  bits &= kAllBits << (from % 64);
  while (true) {
    if (bits != 0) return std::min(word * 64 + std::countr_zero(bits), limit);
    if (++word > last_word) return limit;
    bits = word_value(word);
    if (!set) bits = ~bits;
  }
}

uint64_t RegionMap::find_first_clear(uint64_t from) const {
  return find_first(from, region_count_, false);
}

uint64_t RegionMap::find_first_set(uint64_t from) const {
  return find_first(from, region_count_, true);
}

uint64_t RegionMap::run_length(uint64_t first, uint64_t max) const {
  if (first >= region_count_ || max == 0) return 0;
  uint64_t limit = first + std::min(max, region_count_ - first);
  return find_first(first, limit, !test(first)) - first;
}

uint64_t RegionMap::add_to_transaction(uint64_t word, uint64_t bits) {
  auto& page = current_[word / kPageWords];
  if (!page) page = std::make_unique<TransactionPage>();
  const uint64_t index = word % kPageWords;
  uint64_t added = bits & ~page->bits[index];
  if (added == 0) return 0;
  page->bits[index] |= added;
  page->nonzero[index / 64] |= uint64_t{1} << (index % 64);
  return static_cast<uint64_t>(std::popcount(added));
}

uint64_t RegionMap::set(uint64_t first, uint64_t count) {
  if (first >= region_count_ || count == 0) return 0;
  const uint64_t end = first + std::min(count, region_count_ - first);
  std::lock_guard lock(mutex_);
  uint64_t changed = 0;
  for (uint64_t word = first / 64; word <= (end - 1) / 64; ++word) {
    const unsigned from = word == first / 64 ? first % 64 : 0;
    const unsigned to = word == (end - 1) / 64 ? (end - 1) % 64 + 1 : 64;
    const uint64_t old = live_[word].load(std::memory_order_relaxed);
    const uint64_t added = bit_range(from, to) & ~old;
    if (added == 0) continue;
    // The mutex makes this the only writer, so load + store cannot lose a bit.
    live_[word].store(old | added, std::memory_order_release);
    changed += add_to_transaction(word, added);
  }
  current_regions_ += changed;
  hydrated_.fetch_add(changed, std::memory_order_relaxed);
  return changed;
}

RegionMap::Transaction RegionMap::begin_commit() {
  std::lock_guard lock(mutex_);
  if (committing_)
    throw std::logic_error("RegionMap::begin_commit called while a commit is in progress");
  Transaction transaction;
  transaction.regions = current_regions_;
  for (uint64_t page_index = 0; page_index < current_.size(); ++page_index) {
    auto& page = current_[page_index];
    if (!page) continue;
    for (uint64_t group = 0; group < kPageWords / 64; ++group) {
      for (uint64_t nonzero = page->nonzero[group]; nonzero != 0; nonzero &= nonzero - 1) {
        uint64_t index = group * 64 + std::countr_zero(nonzero);
        transaction.words.emplace_back(page_index * kPageWords + index, page->bits[index]);
      }
    }
    page.reset();
  }
  current_regions_ = 0;
  committing_ = true;
  return transaction;
}

uint64_t RegionMap::transaction_regions() const {
  std::lock_guard lock(mutex_);
  return current_regions_;
}

void RegionMap::finish_commit(Transaction transaction, bool committed) {
  std::lock_guard lock(mutex_);
  committing_ = false;
  if (committed) {
    for (auto [word, bits] : transaction.words)
      committed_[word].fetch_or(bits, std::memory_order_relaxed);
    committed_count_.fetch_add(transaction.regions, std::memory_order_relaxed);
    return;
  }
  for (auto [word, bits] : transaction.words) current_regions_ += add_to_transaction(word, bits);
}

uint64_t RegionMap::committed_word(uint64_t word) const {
  return committed_[word].load(std::memory_order_relaxed);
}

uint64_t RegionMap::committed_regions() const {
  return committed_count_.load(std::memory_order_relaxed);
}

void RegionMap::load(std::span<const uint64_t> words) {
  if (words.size() != word_count())
    throw std::invalid_argument("RegionMap::load: " + std::to_string(words.size()) +
                                " words given, the map has " + std::to_string(word_count()));
  if (!words.empty() && region_count_ % 64 != 0 &&
      (words.back() & ~bit_range(0, region_count_ % 64)) != 0)
    throw std::invalid_argument("RegionMap::load: bits set past the last region " +
                                std::to_string(region_count_ - 1));
  std::lock_guard lock(mutex_);
  if (committing_) throw std::logic_error("RegionMap::load called while a commit is in progress");
  uint64_t count = 0;
  for (uint64_t w = 0; w < words.size(); ++w) {
    live_[w].store(words[w], std::memory_order_release);
    committed_[w].store(words[w], std::memory_order_relaxed);
    count += static_cast<uint64_t>(std::popcount(words[w]));
  }
  for (auto& page : current_) page.reset();
  current_regions_ = 0;
  hydrated_.store(count, std::memory_order_relaxed);
  committed_count_.store(count, std::memory_order_relaxed);
}

void RegionMap::state_extents(uint64_t offset, uint64_t length, size_t max_extents,
                              ExtentList& out) const {
  if (offset >= device_size_ || length == 0 || max_extents == 0) return;
  const uint64_t end = offset + std::min(length, device_size_ - offset);
  const uint64_t end_region = regions_touching(offset, end - offset).second;
  const size_t first_new = out.size();
  uint64_t position = offset;
  while (position < end && out.size() - first_new < max_extents) {
    const uint64_t region = position >> region_shift_;
    const bool hydrated = test(region);
    // The run is measured against the state just read, so flags and length always agree; if
    // the bit changed in between, the run is empty and the region is read again.
    const uint64_t run_end_region = find_first(region, end_region, !hydrated);
    if (run_end_region == region) continue;
    const uint32_t flags = hydrated ? kStateHydrated : 0;
    const uint64_t run_end = std::min(end, run_end_region << region_shift_);
    // Bits may be set between two runs; keep the extents maximal anyway.
    if (out.size() > first_new && out.back().flags == flags)
      out.back().length += run_end - position;
    else
      out.push_back(Extent{run_end - position, flags});
    position = run_end;
  }
}

}  // namespace hydrate
