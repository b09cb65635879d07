#include "engine/clone/readahead_hints.h"

#include <algorithm>

namespace hydrate {
namespace {

bool overlaps(const ReadaheadHints::Range& a, const ReadaheadHints::Range& b) {
  return a.first < b.end && b.first < a.end;
}

template <typename Deque>
void push_bounded(Deque& d, typename Deque::value_type v) {
  d.push_back(v);
  if (d.size() > ReadaheadHints::kMaxHints) d.pop_front();
}

}  // namespace

ReadaheadHints::ReadaheadHints(uint64_t initial, uint64_t max, uint64_t limit)
    : initial_(std::max<uint64_t>(1, initial)), max_(std::max(initial_, max)), limit_(limit) {}

uint64_t ReadaheadHints::note_miss(uint64_t first, uint64_t end) {
  std::lock_guard lock(mutex_);
  uint64_t size = initial_;
  // The newest readahead the miss falls in or just after: the reader streams through it.
  for (auto it = started_.rbegin(); it != started_.rend(); ++it) {
    if (first >= it->first && first <= it->end) {
      size = std::min(max_, 2 * it->size);
      break;
    }
  }
  Range r{end, std::min(limit_, end + size)};
  if (r.first >= r.end) return 0;
  std::erase_if(hints_, [&](const Range& h) { return overlaps(h, r); });
  push_bounded(hints_, r);
  push_bounded(started_, Started{r.first, r.end, size});
  return size;
}

std::optional<ReadaheadHints::Range> ReadaheadHints::take_newest() {
  std::lock_guard lock(mutex_);
  if (hints_.empty()) return std::nullopt;
  Range r = hints_.back();
  hints_.pop_back();
  return r;
}

void ReadaheadHints::put_back(Range rest) {
  if (rest.first >= rest.end) return;
  std::lock_guard lock(mutex_);
  if (std::any_of(hints_.begin(), hints_.end(), [&](const Range& h) { return overlaps(h, rest); }))
    return;
  push_bounded(hints_, rest);
}

size_t ReadaheadHints::size() const {
  std::lock_guard lock(mutex_);
  return hints_.size();
}

}  // namespace hydrate
