#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/async_event.h"
#include "engine/block_device.h"
#include "engine/clone/claim_plan.h"
#include "engine/clone/clone_settings.h"
#include "engine/clone/clone_status.h"
#include "engine/clone/committer.h"
#include "engine/clone/inflight_table.h"
#include "engine/region_map.h"
#include "engine/source.h"
#include "engine/task_group.h"

namespace hydrate {

// The shared state of one clone and the few operations that move regions from unhydrated to
// hydrated. Request routing (CloneVolume) and background hydration (Hydrator) are both built
// from these, so I1 and I5 are enforced in one place each:
//   - a region's bit is set only in release(), after its destination write completed (I1);
//   - regions are claimed only in plan(), under the in-flight table's lock, after re-checking
//     their bits; an operation that meets a claim it must not race waits for it and plans
//     again (I5). The table is private: nothing else can claim.
class CloneCore {
 public:
  CloneCore(CloneSettings settings, Source& source, BlockDevice& destination, RegionMap& map,
            Committer& committer, asio::any_io_executor background);
  ~CloneCore();

  const CloneSettings& settings() const { return settings_; }
  Source& source() { return source_; }
  BlockDevice& destination() { return destination_; }
  RegionMap& map() { return map_; }
  Committer& committer() { return committer_; }
  asio::any_io_executor background_executor() const { return background_; }
  const std::string& name() const { return settings_.name; }

  // --- state ---------------------------------------------------------------------------
  CloneState state() const { return state_.load(); }
  std::string state_reason() const;
  void set_state(CloneState state, std::string reason = {});
  // Destination or metadata failure: stop writing anything, keep serving reads (§5).
  void enter_read_only(const std::string& reason);
  bool writable() const;  // neither read-only nor failed

  // The source becomes usable (connected, and verified against the metadata, I7).
  void mark_source_ready() { source_ready_.set(); }
  bool source_ready() const { return source_ready_.is_set(); }

  // Live hydration knobs (`hydrate ctl`).
  HydrationSettings hydration() const;
  void set_hydration(const HydrationSettings& settings);

  // --- claims ----------------------------------------------------------------------------
  // Cuts regions [first, end) (clipped to the map) into runs that are hydrated, claimed by
  // someone else, or unhydrated and unclaimed — and claims the latter for the caller as
  // `policy` says, all in one step under the table's lock, so nothing can slip in between the
  // look and the claim. If a claim the policy waits for stands in the range, the plan claims
  // nothing and names it as the blocker. Thread-safe (takes the table's lock).
  ClaimPlan plan(uint64_t first, uint64_t end, const ClaimPolicy& policy);

  // Reads [offset, offset + out.size()) from the source, waiting for it to become usable up to
  // source_timeout (EIO after that: never wrong data). Background reads queue behind
  // on-demand ones in the source (Source::read_background); on-demand bytes in flight are
  // counted here, the one place every client's source read passes, for the hydrator's share.
  enum class Priority { on_demand, background };
  asio::awaitable<IoResult> read_source(uint64_t offset, std::span<std::byte> out,
                                        Priority priority = Priority::on_demand);

  // Fills claim->data from the source (at the claim's priority), then sets claim->data_ready.
  asio::awaitable<IoResult> fetch(RegionClaim& claim);
  // Writes a fetched claim to the destination and releases it. Failures switch the clone to
  // read-only (the destination is unusable) and release the claim without its bits.
  asio::awaitable<void> store(std::shared_ptr<RegionClaim> claim);
  // Hydrates a claim without moving data: zero the destination, then release. For a source
  // hole on a destination_zeroed clone nothing is written at all. Client WRITE_ZEROES/TRIM
  // always zero: after a crash an unhydrated region may hold an unacknowledged write, which
  // is fine to expose for a source hole but not after the client asked for zeroes.
  asio::awaitable<IoResult> hydrate_without_data(std::shared_ptr<RegionClaim> claim, bool may_unmap,
                                                 bool source_hole);
  // Sets the claim's bits when `hydrated` (I1: only after its data reached the destination),
  // removes it from the table and wakes its waiters. Thread-safe (takes the table's lock).
  void release(const std::shared_ptr<RegionClaim>& claim, bool hydrated);

  // Runs `task` detached but tracked, so close() can wait for it (copy-on-read write-backs).
  void spawn_tracked(asio::awaitable<void> task);
  asio::awaitable<void> drain();

  // --- counters --------------------------------------------------------------------------
  struct Counters {
    std::atomic<uint64_t> fetched_bytes{0};
    std::atomic<uint64_t> zeroed_bytes{0};
    std::atomic<uint64_t> on_demand_fetches{0};
    std::atomic<uint64_t> hydration_errors{0};
    std::atomic<uint64_t> on_demand_inflight_bytes{0};  // clients' reads at the source
    // now() (ns since the clock's epoch) when the last client read at the source finished.
    std::atomic<int64_t> on_demand_last_done_ns{0};
    std::atomic<uint64_t> background_inflight_bytes{0};
    std::atomic<uint64_t> hydrated_bytes_total{0};  // for the rate estimate
  };
  Counters& counters() { return counters_; }

  // The one clock of a clone (CloneParts::clock; empty: steady_clock), for status rates and for
  // when a client last read, so a test that needs reproducible runs can stop time.
  using Clock = std::chrono::steady_clock;
  void set_clock(std::function<Clock::time_point()> clock) { clock_ = std::move(clock); }
  Clock::time_point now() const { return clock_ ? clock_() : Clock::now(); }

  // Called whenever claims are released or state changes, so the hydrator re-plans.
  void set_wakeup(std::function<void()> wakeup) { wakeup_ = std::move(wakeup); }
  void wake() const {
    if (wakeup_) wakeup_();
  }

 private:
  CloneSettings settings_;
  Source& source_;
  BlockDevice& destination_;
  RegionMap& map_;
  Committer& committer_;
  asio::any_io_executor background_;
  InflightTable table_;
  TaskGroup tracked_;
  AsyncEvent source_ready_;
  Counters counters_;
  std::function<void()> wakeup_;
  std::function<Clock::time_point()> clock_;

  std::atomic<CloneState> state_{CloneState::starting};
  mutable std::mutex mutex_;
  std::string reason_;
  HydrationSettings hydration_;
};

}  // namespace hydrate
