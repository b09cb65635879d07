#include "engine/clone/clone_core.h"

#include <asio/use_awaitable.hpp>
#include <new>

#include "engine/log.h"

namespace hydrate {

const char* to_string(CloneState state) {
  switch (state) {
    case CloneState::starting: return "starting";
    case CloneState::hydrating: return "hydrating";
    case CloneState::paused: return "paused";
    case CloneState::complete: return "complete";
    case CloneState::read_only: return "read-only";
    case CloneState::failed: return "failed";
  }
  return "unknown";
}

CloneCore::CloneCore(CloneSettings settings, Source& source, BlockDevice& destination,
                     RegionMap& map, Committer& committer, asio::any_io_executor background)
    : settings_(std::move(settings)),
      source_(source),
      destination_(destination),
      map_(map),
      committer_(committer),
      background_(background),
      tracked_(background),
      hydration_(settings_.hydration) {}

CloneCore::~CloneCore() = default;

std::string CloneCore::state_reason() const {
  std::lock_guard lock(mutex_);
  return reason_;
}

void CloneCore::set_state(CloneState state, std::string reason) {
  {
    std::lock_guard lock(mutex_);
    CloneState old = state_.load();
    // Read-only and failed are terminal for this process: an operator has to look.
    if ((old == CloneState::read_only || old == CloneState::failed) &&
        state != CloneState::failed)
      return;
    state_.store(state);
    reason_ = std::move(reason);
  }
  // Nothing waiting for the source may wait for a source that will never be used.
  if (state == CloneState::failed) source_ready_.set();
  wake();
}

void CloneCore::enter_read_only(const std::string& reason) {
  if (state() == CloneState::read_only || state() == CloneState::failed) return;
  log::error("clone.read_only", {{"export", name()}, {"reason", reason}});
  set_state(CloneState::read_only, reason);
}

bool CloneCore::writable() const {
  CloneState s = state();
  return s != CloneState::read_only && s != CloneState::failed;
}

HydrationSettings CloneCore::hydration() const {
  std::lock_guard lock(mutex_);
  return hydration_;
}

void CloneCore::set_hydration(const HydrationSettings& settings) {
  {
    std::lock_guard lock(mutex_);
    hydration_ = settings;
  }
  wake();
}

ByteRange CloneCore::bytes_of(uint64_t first, uint64_t count) const {
  ByteRange a = map_.region_range(first);
  ByteRange b = map_.region_range(first + count - 1);
  return ByteRange{a.offset, b.end() - a.offset};
}

asio::awaitable<IoResult> CloneCore::read_source(uint64_t offset, std::span<std::byte> out) {
  if (state() == CloneState::failed) {
    co_return IoResult::failure(EIO, "export " + name() + " failed: " + state_reason());
  }
  if (!source_ready_.is_set()) {
    bool ready = co_await source_ready_.async_wait_for(settings_.source_timeout,
                                                       asio::use_awaitable);
    if (state() == CloneState::failed) {
      co_return IoResult::failure(EIO, "export " + name() + " failed: " + state_reason());
    }
    if (!ready) {
      co_return IoResult::failure(
          EIO, "export " + name() + ": source " + source_.identity() +
                   " not available within source_timeout; offset " + std::to_string(offset) +
                   " is not hydrated yet");
    }
  }
  IoResult r = co_await source_.read(offset, out);
  if (!r) {
    counters_.hydration_errors.fetch_add(1);
    if (r.message.empty()) r.message = "source read failed";
    r.message = "export " + name() + ": source read at offset " + std::to_string(offset) +
                " length " + std::to_string(out.size()) + ": " + r.message;
  }
  co_return r;
}

asio::awaitable<IoResult> CloneCore::fetch(RegionClaim& claim) {
  claim.bytes = bytes_of(claim.first, claim.count);
  // Aligned so the destination may write it with O_DIRECT (BlockDevice::write_uncached).
  constexpr std::align_val_t kAlignment{4096};
  claim.data = std::shared_ptr<std::byte[]>(
      static_cast<std::byte*>(::operator new[](claim.bytes.length, kAlignment)),
      [](std::byte* p) { ::operator delete[](p, kAlignment); });
  IoResult r =
      co_await read_source(claim.bytes.offset, std::span(claim.data.get(), claim.bytes.length));
  if (r) counters_.fetched_bytes.fetch_add(claim.bytes.length);
  if (!r) claim.data.reset();
  claim.fetch_result = r;
  claim.data_ready.set();
  co_return r;
}

asio::awaitable<void> CloneCore::store(std::shared_ptr<RegionClaim> claim) {
  if (!claim->fetch_result || !writable()) {
    release(claim, false);
    co_return;
  }
  // Background data is not about to be read: it may bypass the page cache, which also makes
  // the destination flush before each commit cheap. What a client fetched stays cached.
  const std::span<const std::byte> data(claim->data.get(), claim->bytes.length);
  IoResult r;
  if (claim->on_demand)
    r = co_await destination_.write(claim->bytes.offset, data, false);
  else
    r = co_await destination_.write_uncached(claim->bytes.offset, data);
  if (!r) {
    counters_.hydration_errors.fetch_add(1);
    enter_read_only("destination write failed while hydrating offset " +
                    std::to_string(claim->bytes.offset) + ": " + r.message);
    release(claim, false);
    co_return;
  }
  release(claim, true);
}

asio::awaitable<IoResult> CloneCore::hydrate_without_data(std::shared_ptr<RegionClaim> claim,
                                                          bool may_unmap, bool source_hole) {
  ByteRange range = bytes_of(claim->first, claim->count);
  IoResult r;
  if (!(source_hole && settings_.destination_zeroed)) {
    r = co_await destination_.write_zeroes(range.offset, range.length, may_unmap);
  }
  if (!r) {
    enter_read_only("destination write_zeroes failed at offset " + std::to_string(range.offset) +
                    ": " + r.message);
    release(claim, false);
    co_return r;
  }
  counters_.zeroed_bytes.fetch_add(range.length);
  release(claim, true);
  co_return r;
}

void CloneCore::release(const std::shared_ptr<RegionClaim>& claim, bool hydrated) {
  {
    std::lock_guard lock(table_.mutex());
    if (hydrated) {
      uint64_t newly = map_.set(claim->first, claim->count);
      if (newly > 0) {
        committer_.note_dirty();
        counters_.hydrated_bytes_total.fetch_add(bytes_of(claim->first, claim->count).length);
      }
    }
    claim->hydrated = hydrated;
    table_.erase(*claim);
  }
  claim->data_ready.set();  // in case a failure path never reached fetch()
  claim->done.set();
  wake();
}

void CloneCore::spawn_tracked(asio::awaitable<void> task) { tracked_.spawn(std::move(task)); }

asio::awaitable<void> CloneCore::drain() { co_await tracked_.wait(); }

}  // namespace hydrate
