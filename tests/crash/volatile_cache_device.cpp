#include "tests/crash/volatile_cache_device.h"

#include <algorithm>
#include <cstring>

#include "tests/crash/scheduler_hops.h"

namespace hydrate::crash {

std::string to_string(const LossPolicy& policy) {
  switch (policy.mode) {
    case LossPolicy::Mode::keep_none:
      return "keep-none";
    case LossPolicy::Mode::keep_all:
      return "keep-all";
    case LossPolicy::Mode::random:
      return "random:" + std::to_string(policy.seed);
  }
  return "?";
}

VolatileCacheDevice::VolatileCacheDevice(std::vector<std::byte> initial, EventJournal& journal,
                                         Options options)
    : options_(std::move(options)),
      size_(initial.size()),
      journal_(journal),
      initial_(initial),
      visible_(std::move(initial)),
      latency_(options_.latency_seed) {}

IoResult VolatileCacheDevice::check_range(const char* what, uint64_t offset,
                                          uint64_t length) const {
  if (offset > size_ || length > size_ - offset)
    return IoResult::failure(
        EINVAL, options_.name + ": " + what + " at offset " + std::to_string(offset) + " length " +
                    std::to_string(length) + " is past the end of the device (size " +
                    std::to_string(size_) + ")");
  return IoResult::success();
}

unsigned VolatileCacheDevice::next_latency() {
  if (options_.fixed_latency) return options_.max_latency_hops;
  return static_cast<unsigned>(latency_.below(options_.max_latency_hops + 1));
}

static IoResult power_is_off(const std::string& name, const char* what, uint64_t offset) {
  return IoResult::failure(EIO, name + ": " + what + " at offset " + std::to_string(offset) +
                                    " failed: simulated power cut");
}

void VolatileCacheDevice::power_cut() {
  cut_.store(true);
}

asio::awaitable<IoResult> VolatileCacheDevice::read(uint64_t offset, std::span<std::byte> out) {
  unsigned hops;
  {
    std::lock_guard lock(mutex_);
    IoResult range = check_range("read", offset, out.size());
    if (!range) co_return range;
    if (cut_.load()) co_return power_is_off(options_.name, "read", offset);
    hops = next_latency();
  }
  co_await scheduler_hops(hops);
  std::lock_guard lock(mutex_);
  if (cut_.load()) co_return power_is_off(options_.name, "read", offset);
  std::memcpy(out.data(), visible_.data() + offset, out.size());
  co_return IoResult::success();
}

asio::awaitable<IoResult> VolatileCacheDevice::write(uint64_t offset,
                                                     std::span<const std::byte> data, bool fua) {
  auto copy = std::make_shared<const std::vector<std::byte>>(data.begin(), data.end());
  co_return co_await mutate(Action::write, offset, data.size(), std::move(copy), fua);
}

asio::awaitable<IoResult> VolatileCacheDevice::allocation(uint64_t offset, uint64_t length,
                                                          ExtentList& out) {
  if (offset >= size_)
    co_return IoResult::failure(EINVAL, options_.name + ": allocation query at offset " +
                                            std::to_string(offset) +
                                            " is past the end of the device");
  uint64_t clipped = std::min(length, size_ - offset);
  if (clipped > 0) out.push_back(Extent{clipped, 0});
  co_return IoResult::success();
}

asio::awaitable<IoResult> VolatileCacheDevice::mutate(
    Action action, uint64_t offset, uint64_t length,
    std::shared_ptr<const std::vector<std::byte>> data, bool fua) {
  const char* what = to_string(action);
  size_t index;
  unsigned hops;
  {
    std::lock_guard lock(mutex_);
    if (action != Action::flush) {
      IoResult range = check_range(what, offset, length);
      if (!range) co_return range;
    }
    if (cut_.load()) co_return power_is_off(options_.name, what, offset);
    Record record;
    record.action = action;
    record.offset = offset;
    record.length = length;
    record.fua = fua;
    record.data = std::move(data);
    record.issued = journal_.record(
        Event{0, options_.actor, 0, action, Phase::issue, offset, length, fua, true});
    index = records_.size();
    records_.push_back(std::move(record));
    hops = next_latency();
  }
  co_await scheduler_hops(hops);
  std::lock_guard lock(mutex_);
  if (cut_.load()) co_return power_is_off(options_.name, what, offset);
  Record& record = records_[index];
  if (action != Action::flush) {
    if (record.data)
      std::memcpy(visible_.data() + offset, record.data->data(), length);
    else
      std::memset(visible_.data() + offset, 0, length);
  }
  record.ok = true;
  record.completed = journal_.record(
      Event{0, options_.actor, 0, action, Phase::complete, offset, length, fua, true});
  co_return IoResult::success();
}

uint64_t VolatileCacheDevice::flush_barrier_locked(uint64_t cut) const {
  uint64_t barrier = 0;
  for (const Record& r : records_)
    if (r.action == Action::flush && r.ok && r.completed < cut)
      barrier = std::max(barrier, r.issued);
  return barrier;
}

uint64_t VolatileCacheDevice::flush_barrier(uint64_t cut) const {
  std::lock_guard lock(mutex_);
  return flush_barrier_locked(cut);
}

bool VolatileCacheDevice::durable_locked(const Record& r, uint64_t cut, uint64_t barrier) const {
  return r.action != Action::flush && r.ok && r.completed < cut && (r.fua || r.completed < barrier);
}

bool VolatileCacheDevice::durable_at(size_t index, uint64_t cut) const {
  std::lock_guard lock(mutex_);
  return durable_locked(records_.at(index), cut, flush_barrier_locked(cut));
}

std::vector<std::byte> VolatileCacheDevice::image_after_crash(uint64_t cut,
                                                              const LossPolicy& policy) const {
  std::lock_guard lock(mutex_);
  const uint64_t barrier = flush_barrier_locked(cut);
  // Writes issued before the cut, in the order they reached the cache: completed ones by
  // completion, then the ones still in flight at the cut by issue.
  std::vector<size_t> order;
  for (size_t i = 0; i < records_.size(); ++i)
    if (records_[i].action != Action::flush && records_[i].issued < cut) order.push_back(i);
  auto arrival = [&](size_t i) {
    const Record& r = records_[i];
    return r.ok && r.completed < cut ? r.completed : kNever;
  };
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    uint64_t ka = arrival(a), kb = arrival(b);
    if (ka != kb) return ka < kb;
    return records_[a].issued < records_[b].issued;
  });

  std::vector<std::byte> image = initial_;
  SeededRandom random(policy.seed);
  auto apply = [&](const Record& r, uint64_t from, uint64_t to) {
    if (r.data)
      std::memcpy(image.data() + from, r.data->data() + (from - r.offset), to - from);
    else
      std::memset(image.data() + from, 0, to - from);
  };
  for (size_t i : order) {
    const Record& r = records_[i];
    if (r.length == 0) continue;
    if (durable_locked(r, cut, barrier) || policy.mode == LossPolicy::Mode::keep_all) {
      apply(r, r.offset, r.offset + r.length);
      continue;
    }
    if (policy.mode == LossPolicy::Mode::keep_none) continue;
    if (!random.chance(policy.keep_percent)) continue;
    if (!random.chance(policy.tear_percent)) {
      apply(r, r.offset, r.offset + r.length);
      continue;
    }
    // Torn: each sector the write touches lands or not on its own.
    const uint64_t end = r.offset + r.length;
    for (uint64_t sector = r.offset / kSectorSize * kSectorSize; sector < end;
         sector += kSectorSize) {
      if (random.chance(50))
        apply(r, std::max(sector, r.offset), std::min(sector + kSectorSize, end));
    }
  }
  return image;
}

std::vector<std::byte> VolatileCacheDevice::durable_image(uint64_t cut) const {
  return image_after_crash(cut, LossPolicy::none());
}

std::vector<std::byte> VolatileCacheDevice::visible() const {
  std::lock_guard lock(mutex_);
  return visible_;
}

std::vector<VolatileCacheDevice::Record> VolatileCacheDevice::records() const {
  std::lock_guard lock(mutex_);
  return records_;
}

uint64_t VolatileCacheDevice::flushes() const {
  std::lock_guard lock(mutex_);
  return static_cast<uint64_t>(std::count_if(
      records_.begin(), records_.end(), [](auto& r) { return r.action == Action::flush && r.ok; }));
}

}  // namespace hydrate::crash
