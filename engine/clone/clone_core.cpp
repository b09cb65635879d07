#include "engine/clone/clone_core.h"

#include <algorithm>
#include <asio/use_awaitable.hpp>
#include <new>

#include "engine/log.h"

namespace hydrate {

const char* to_string(CloneState state) {
  switch (state) {
    case CloneState::starting:
      return "starting";
    case CloneState::hydrating:
      return "hydrating";
    case CloneState::paused:
      return "paused";
    case CloneState::complete:
      return "complete";
    case CloneState::read_only:
      return "read-only";
    case CloneState::failed:
      return "failed";
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
    if ((old == CloneState::read_only || old == CloneState::failed) && state != CloneState::failed)
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

namespace {

// Whether `policy` must wait for `other` rather than share or skip it.
bool waits_for(const ClaimPolicy& policy, const RegionClaim& other) {
  switch (policy.wait_for) {
    case ClaimPolicy::WaitFor::nothing:
      return false;
    case ClaimPolicy::WaitFor::writes:
      return other.kind == RegionClaim::Kind::write;
    case ClaimPolicy::WaitFor::any:
      return true;
  }
  return true;
}

}  // namespace

ClaimPlan CloneCore::plan(uint64_t first, uint64_t end, const ClaimPolicy& policy) {
  using State = ClaimPlan::State;
  ClaimPlan plan;
  end = std::min(end, map_.region_count());
  {
    std::lock_guard lock(table_.mutex());
    size_t claims = 0;
    uint64_t r = first;
    while (r < end && claims < policy.max_claims) {
      if (map_.test(r)) {
        const uint64_t run = map_.run_length(r, end - r);
        plan.runs.push_back({r, run, State::hydrated, nullptr});
        r += run;
        continue;
      }
      if (auto other = table_.find(r)) {
        const uint64_t stop = std::min(other->end(), end);
        const bool in_wait_range = r < policy.wait_end && stop > policy.wait_first;
        if (in_wait_range && waits_for(policy, *other)) {
          plan.blocker = std::move(other);
          break;
        }
        plan.runs.push_back({r, stop - r, State::other, std::move(other)});
        r = stop;
        continue;
      }
      const uint64_t run =
          std::min({map_.run_length(r, end - r), table_.next_claimed(r) - r, policy.max_run});
      if (policy.claim) {
        plan.runs.push_back(
            {r, run, State::ours, table_.insert(policy.kind, r, run, policy.on_demand)});
        ++claims;
      } else {
        plan.runs.push_back({r, run, State::unclaimed, nullptr});
      }
      r += run;
    }
    plan.end = r;
    if (!plan.blocker) return plan;
    // Nobody can have seen the claims made so far: the lock was held throughout.
    for (const auto& run : plan.runs)
      if (run.state == State::ours) table_.erase(*run.claim);
  }
  for (const auto& run : plan.runs) {
    if (run.state != State::ours) continue;
    run.claim->data_ready.set();
    run.claim->done.set();
  }
  plan.runs.clear();
  return plan;
}

asio::awaitable<IoResult> CloneCore::read_source(uint64_t offset, std::span<std::byte> out,
                                                 Priority priority) {
  if (state() == CloneState::failed) {
    co_return IoResult::failure(EIO, "export " + name() + " failed: " + state_reason());
  }
  if (!source_ready_.is_set()) {
    bool ready =
        co_await source_ready_.async_wait_for(settings_.source_timeout, asio::use_awaitable);
    if (state() == CloneState::failed) {
      co_return IoResult::failure(EIO, "export " + name() + " failed: " + state_reason());
    }
    if (!ready) {
      co_return IoResult::failure(EIO, "export " + name() + ": source " + source_.identity() +
                                           " not available within source_timeout; offset " +
                                           std::to_string(offset) + " is not hydrated yet");
    }
  }
  IoResult r;
  if (priority == Priority::background) {
    r = co_await source_.read_background(offset, out);
  } else {
    counters_.on_demand_inflight_bytes.fetch_add(out.size());
    r = co_await source_.read(offset, out);
    counters_.on_demand_last_done_ns.store(now().time_since_epoch().count());
    // The last client read out frees the window for the background; earlier ones wake it
    // through release() (a claim's store) or when the hydrator's own batches finish.
    if (counters_.on_demand_inflight_bytes.fetch_sub(out.size()) == out.size()) wake();
  }
  if (!r) {
    counters_.hydration_errors.fetch_add(1);
    if (r.message.empty()) r.message = "source read failed";
    r.message = "export " + name() + ": source read at offset " + std::to_string(offset) +
                " length " + std::to_string(out.size()) + ": " + r.message;
  }
  co_return r;
}

asio::awaitable<IoResult> CloneCore::fetch(RegionClaim& claim) {
  claim.bytes = map_.byte_range(claim.first, claim.count);
  // Aligned so the destination may write it with O_DIRECT (BlockDevice::write_uncached).
  constexpr std::align_val_t kAlignment{4096};
  claim.data = std::shared_ptr<std::byte[]>(
      static_cast<std::byte*>(::operator new[](claim.bytes.length, kAlignment)),
      [](std::byte* p) { ::operator delete[](p, kAlignment); });
  IoResult r =
      co_await read_source(claim.bytes.offset, std::span(claim.data.get(), claim.bytes.length),
                           claim.on_demand ? Priority::on_demand : Priority::background);
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
  ByteRange range = map_.byte_range(claim->first, claim->count);
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
        counters_.hydrated_bytes_total.fetch_add(
            map_.byte_range(claim->first, claim->count).length);
      }
    }
    claim->hydrated = hydrated;
    table_.erase(*claim);
  }
  claim->data_ready.set();  // in case a failure path never reached fetch()
  claim->done.set();
  wake();
}

void CloneCore::spawn_tracked(asio::awaitable<void> task) {
  tracked_.spawn(std::move(task));
}

asio::awaitable<void> CloneCore::drain() {
  co_await tracked_.wait();
}

}  // namespace hydrate
