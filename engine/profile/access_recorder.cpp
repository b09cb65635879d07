#include "engine/profile/access_recorder.h"

namespace hydrate {

AccessRecorder::AccessRecorder(uint64_t source_size, uint32_t region_size,
                               std::string source_identity, Limits limits, Clock clock)
    : region_size_(region_size),
      limits_(limits),
      clock_(clock ? std::move(clock) : Clock([] { return std::chrono::steady_clock::now(); })),
      started_(clock_()) {
  profile_.source_size = source_size;
  profile_.region_size = region_size;
  profile_.source_identity = std::move(source_identity);
  seen_.assign(profile_.region_count_of_source(), false);
  if (limits_.bytes < region_size_) recording_.store(false);
}

bool AccessRecorder::over_limit_locked(std::chrono::steady_clock::time_point now) const {
  return (recorded_ + 1) * region_size_ > limits_.bytes || now - started_ >= limits_.time;
}

void AccessRecorder::note(uint64_t first, uint64_t end) {
  if (!recording_.load(std::memory_order_acquire)) return;
  const auto now = clock_();
  std::lock_guard lock(mutex_);
  end = std::min<uint64_t>(end, seen_.size());
  for (uint64_t r = first; r < end; ++r) {
    if (seen_[r]) continue;
    if (over_limit_locked(now)) {
      recording_.store(false, std::memory_order_release);
      return;
    }
    seen_[r] = true;
    ++recorded_;
    ++version_;
    if (!profile_.runs.empty() && profile_.runs.back().end() == r)
      ++profile_.runs.back().count;
    else
      profile_.runs.push_back({r, 1});
  }
  // Time runs out even while every touch hits regions already seen.
  if (now - started_ >= limits_.time) recording_.store(false, std::memory_order_release);
}

uint64_t AccessRecorder::recorded_regions() const {
  std::lock_guard lock(mutex_);
  return recorded_;
}

uint64_t AccessRecorder::version() const {
  std::lock_guard lock(mutex_);
  return version_;
}

AccessProfile AccessRecorder::snapshot() const {
  std::lock_guard lock(mutex_);
  return profile_;
}

}  // namespace hydrate
