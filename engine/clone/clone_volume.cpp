#include "engine/clone/clone_volume.h"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <cstring>

#include "engine/clone/copy_progress.h"
#include "engine/log.h"

namespace hydrate {
namespace {

constexpr size_t kBaseAllocation = 0;
constexpr size_t kHydrateState = 1;
constexpr uint64_t kZeroRangesMinRead = 64u << 10;
// How long close() lets background fetches in flight finish before it cuts them off.
constexpr auto kCloseGrace = std::chrono::seconds(2);
// CACHE claims fetching at once for one request: bounds the memory one request can pin.
constexpr size_t kCacheClaimsInFlight = 16;

uint64_t align_down(uint64_t v, uint64_t a) {
  return v / a * a;
}

// Intersection of [a, a_end) and [b, b_end) as a range (length 0 when disjoint).
ByteRange intersect(uint64_t a, uint64_t a_end, uint64_t b, uint64_t b_end) {
  uint64_t lo = std::max(a, b), hi = std::min(a_end, b_end);
  return lo < hi ? ByteRange{lo, hi - lo} : ByteRange{lo, 0};
}

}  // namespace

CloneVolume::~CloneVolume() = default;

IoResult CloneVolume::refuse_write() const {
  if (settings_.read_only)
    return IoResult::failure(EPERM, "export " + settings_.name + " is read-only");
  return IoResult::failure(EIO, "export " + settings_.name + " is in " + to_string(core_->state()) +
                                    " mode: " + core_->state_reason());
}

// ---------------------------------------------------------------------------------------
// READ

asio::awaitable<IoResult> CloneVolume::read(uint64_t offset, std::span<std::byte> out,
                                            std::vector<ByteRange>* zeros) {
  profile_->note(offset, out.size());
  if (out.empty()) co_return IoResult::success();
  auto [r0, r1] = map_->regions_touching(offset, out.size());
  if (map_->all_set(r0, r1 - r0)) {
    IoResult r = co_await destination_->read(offset, out);
    if (r && zeros && out.size() >= kZeroRangesMinRead) {
      // Punched destination ranges (source holes, trims) go back to the client as holes.
      ExtentList extents;
      if (co_await destination_->allocation(offset, out.size(), extents)) {
        uint64_t at = offset;
        for (const Extent& e : extents) {
          uint64_t len = std::min<uint64_t>(e.length, offset + out.size() - at);
          if ((e.flags & kAllocationZero) && len > 0) zeros->push_back({at, len});
          at += len;
          if (at >= offset + out.size()) break;
        }
      }
    }
    co_return r;
  }
  co_return co_await read_slow(offset, out);
}

asio::awaitable<IoResult> CloneVolume::read_slow(uint64_t offset, std::span<std::byte> out) {
  for (;;) {
    ClaimPlan plan = plan_read(offset, out.size());
    if (!plan.blocker) co_return co_await execute_read(plan, offset, out);
    co_await plan.blocker->done.async_wait(asio::use_awaitable);
  }
}

// Routing row READ, not hydrated: with copy-on-read, claim the aligned fetch window so the
// neighbours of this read are fetched in the same request; without it, read the source directly.
// In-flight fetches are shared; a client write in the client's own regions is waited for (I5).
ClaimPlan CloneVolume::plan_read(uint64_t offset, uint64_t length) {
  const bool copy = settings_.copy_on_read && core_->writable();
  const uint64_t end = offset + length;
  const uint64_t window = std::max<uint64_t>(settings_.fetch_window, map_->region_size());
  const uint64_t w_start = copy ? align_down(offset, window) : offset;
  const uint64_t w_end =
      copy ? std::min(map_->device_size(), align_down(end + window - 1, window)) : end;
  auto [w0, w1] = map_->regions_touching(w_start, w_end - w_start);
  auto [r0, r1] = map_->regions_touching(offset, length);
  return core_->plan(w0, w1,
                     {.kind = RegionClaim::Kind::fetch,
                      .on_demand = true,
                      .claim = copy,
                      .wait_for = ClaimPolicy::WaitFor::writes,
                      .wait_first = r0,
                      .wait_end = r1});
}

ByteRange CloneVolume::client_part(const ClaimPlan::Run& run, uint64_t offset, uint64_t end) const {
  ByteRange bytes = map_->byte_range(run.first, run.count);
  return intersect(bytes.offset, bytes.end(), offset, end);
}

// Runs a read plan: our fetches, destination reads and direct source reads all at once, then
// copies fetched bytes (ours and other operations') into the reply. Our claims are written back
// after the reply (copy-on-read; store() releases them).
asio::awaitable<IoResult> CloneVolume::execute_read(const ClaimPlan& plan, uint64_t offset,
                                                    std::span<std::byte> out) {
  using State = ClaimPlan::State;
  const uint64_t end = offset + out.size();
  const std::vector<std::shared_ptr<RegionClaim>> mine = plan.ours();
  auto& counters = core_->counters();
  counters.on_demand_fetches.fetch_add(mine.size());
  if (!mine.empty()) {
    uint64_t first_region = UINT64_MAX, end_region = 0;
    for (const auto& claim : mine) {
      first_region = std::min(first_region, claim->first);
      end_region = std::max(end_region, claim->end());
    }
    hydrator_->note_miss(first_region, end_region);
  }
  std::vector<IoResult> results(plan.runs.size());
  {
    TaskGroup group(co_await asio::this_coro::executor);
    for (const auto& claim : mine) {
      group.spawn([](CloneCore* core, std::shared_ptr<RegionClaim> c) -> asio::awaitable<void> {
        co_await core->fetch(*c);
      }(core_.get(), claim));
    }
    for (size_t i = 0; i < plan.runs.size(); ++i) {
      const ClaimPlan::Run& run = plan.runs[i];
      ByteRange part = client_part(run, offset, end);
      if (part.length == 0) continue;
      std::span<std::byte> slice = out.subspan(part.offset - offset, part.length);
      if (run.state == State::hydrated) {
        group.spawn([](BlockDevice* d, uint64_t at, std::span<std::byte> buf,
                       IoResult* res) -> asio::awaitable<void> {
          *res = co_await d->read(at, buf);
        }(destination_.get(), part.offset, slice, &results[i]));
      } else if (run.state == State::unclaimed) {
        group.spawn([](CloneCore* core, uint64_t at, std::span<std::byte> buf,
                       IoResult* res) -> asio::awaitable<void> {
          *res = co_await core->read_source(at, buf);
        }(core_.get(), part.offset, slice, &results[i]));
      }
    }
    co_await group.wait();
  }

  for (size_t i = 0; i < plan.runs.size(); ++i) {
    const ClaimPlan::Run& run = plan.runs[i];
    ByteRange part = client_part(run, offset, end);
    if (part.length == 0 || (run.state != State::ours && run.state != State::other)) continue;
    const RegionClaim& claim = *run.claim;
    co_await run.claim->data_ready.async_wait(asio::use_awaitable);
    if (!claim.fetch_result || !claim.data) {
      results[i] =
          claim.fetch_result ? IoResult::failure(EIO, "fetch abandoned") : claim.fetch_result;
      continue;
    }
    std::memcpy(out.data() + (part.offset - offset),
                claim.data.get() + (part.offset - claim.bytes.offset), part.length);
  }
  for (const auto& claim : mine) core_->spawn_tracked(core_->store(claim));

  for (const IoResult& r : results) {
    if (!r) co_return IoResult::failure(r.error ? r.error : EIO, r.message);
  }
  co_return IoResult::success();
}

// ---------------------------------------------------------------------------------------
// WRITE, WRITE_ZEROES, TRIM

asio::awaitable<IoResult> CloneVolume::write(uint64_t offset, std::span<const std::byte> data,
                                             WriteFlags flags) {
  profile_->note(offset, data.size());
  if (settings_.read_only || !core_->writable()) co_return refuse_write();
  WritePayload payload;
  payload.data = data;
  co_return co_await write_impl(offset, data.size(), payload, flags.fua);
}

asio::awaitable<IoResult> CloneVolume::zero(uint64_t offset, uint64_t length, ZeroFlags flags) {
  profile_->note(offset, length);
  if (settings_.read_only || !core_->writable()) co_return refuse_write();
  if (flags.fast_only && !destination_->fast_zero()) {
    co_return IoResult::failure(ENOTSUP,
                                "export " + settings_.name + ": destination cannot zero quickly");
  }
  WritePayload payload;
  payload.zeroes = true;
  payload.may_unmap = flags.may_trim;
  payload.fast_only = flags.fast_only;
  co_return co_await write_impl(offset, length, payload, flags.fua);
}

asio::awaitable<IoResult> CloneVolume::write_direct(uint64_t offset, uint64_t length,
                                                    const WritePayload& payload) {
  if (length == 0) co_return IoResult::success();
  if (payload.zeroes)
    co_return co_await destination_->write_zeroes(offset, length, payload.may_unmap);
  co_return co_await destination_->write(offset, payload.data.subspan(0, length), false);
}

// Routing rows WRITE (whole and partial regions) and WRITE_ZEROES: claim, fetch what partial
// regions need, write, release with bits set, commit on FUA.
asio::awaitable<IoResult> CloneVolume::write_impl(uint64_t offset, uint64_t length,
                                                  WritePayload payload, bool fua) {
  if (length == 0) co_return IoResult::success();
  std::vector<std::shared_ptr<RegionClaim>> mine;
  IoResult r = co_await claim_for_write(offset, length, payload.fast_only, mine);
  if (!r) co_return r;

  auto release_all = [&](bool hydrated) {
    for (const auto& claim : mine) core_->release(claim, hydrated);
  };
  std::vector<MergedRegion> merged = partial_regions(mine, offset, length);
  r = co_await fetch_and_merge(merged, offset, length, payload);
  if (!r) {
    release_all(false);
    co_return r;
  }
  r = co_await write_pieces(merged, offset, length, payload);
  if (!r) {
    // The destination is unusable: stop writing anything, keep serving reads.
    release_all(false);
    core_->enter_read_only("destination write failed: " + r.message);
    co_return IoResult::failure(EIO, "export " + settings_.name + ": " + r.message);
  }
  release_all(true);

  // FUA (I4): the data and the bits of any region this write hydrated are durable on return.
  if (fua) co_return co_await committer_->commit();
  co_return IoResult::success();
}

// Waits until no operation holds a claim on the write's regions (I5: fetched data must not land
// after the client's bytes), then claims every unhydrated run. Hydrated regions need no claim.
asio::awaitable<IoResult> CloneVolume::claim_for_write(
    uint64_t offset, uint64_t length, bool fast_only,
    std::vector<std::shared_ptr<RegionClaim>>& mine) {
  auto [r0, r1] = map_->regions_touching(offset, length);
  if (map_->all_set(r0, r1 - r0)) co_return IoResult::success();
  for (;;) {
    ClaimPlan plan = core_->plan(r0, r1,
                                 {.kind = RegionClaim::Kind::write,
                                  .on_demand = true,
                                  .wait_for = ClaimPolicy::WaitFor::any});
    if (plan.blocker) {
      co_await plan.blocker->done.async_wait(asio::use_awaitable);
      continue;
    }
    mine = plan.ours();
    break;
  }
  // A partial region that is not hydrated needs a source fetch: not fast.
  if (fast_only && !partial_regions(mine, offset, length).empty()) {
    for (const auto& claim : mine) core_->release(claim, false);
    mine.clear();
    co_return IoResult::failure(ENOTSUP, "export " + settings_.name +
                                             ": zeroing part of an unhydrated region needs a " +
                                             "source read");
  }
  co_return IoResult::success();
}

// The regions among `mine` that the write covers only in part: their other bytes must come from
// the source (routing row WRITE partial region). At most the first and the last.
std::vector<CloneVolume::MergedRegion> CloneVolume::partial_regions(
    const std::vector<std::shared_ptr<RegionClaim>>& mine, uint64_t offset, uint64_t length) const {
  const uint64_t end = offset + length;
  std::vector<MergedRegion> merged;
  for (const auto& claim : mine) {
    for (uint64_t region : {claim->first, claim->end() - 1}) {
      ByteRange bytes = map_->region_range(region);
      bool partial = offset > bytes.offset || end < bytes.end();
      bool seen = !merged.empty() && merged.back().region == region;
      if (partial && !seen) merged.push_back({region, bytes, nullptr, {}});
    }
  }
  return merged;
}

// Fetches each partial region from the source (all at once) and lays the client's bytes over it.
asio::awaitable<IoResult> CloneVolume::fetch_and_merge(std::vector<MergedRegion>& merged,
                                                       uint64_t offset, uint64_t length,
                                                       const WritePayload& payload) {
  if (merged.empty()) co_return IoResult::success();
  {
    TaskGroup group(co_await asio::this_coro::executor);
    for (auto& m : merged) {
      m.data.reset(new std::byte[m.bytes.length]);
      group.spawn([](CloneCore* core, MergedRegion* m) -> asio::awaitable<void> {
        m->result =
            co_await core->read_source(m->bytes.offset, std::span(m->data.get(), m->bytes.length));
      }(core_.get(), &m));
    }
    co_await group.wait();
  }
  for (auto& m : merged) {
    if (!m.result) co_return m.result;
    ByteRange part = intersect(m.bytes.offset, m.bytes.end(), offset, offset + length);
    std::byte* at = m.data.get() + (part.offset - m.bytes.offset);
    if (payload.zeroes)
      std::memset(at, 0, part.length);
    else
      std::memcpy(at, payload.data.data() + (part.offset - offset), part.length);
  }
  co_return IoResult::success();
}

// One destination write per merged region, plus the client's bytes for everything else, all at
// once. Returns the first failure.
asio::awaitable<IoResult> CloneVolume::write_pieces(const std::vector<MergedRegion>& merged,
                                                    uint64_t offset, uint64_t length,
                                                    const WritePayload& payload) {
  const uint64_t end = offset + length;
  std::vector<std::pair<ByteRange, const std::byte*>> writes;  // null data = payload
  uint64_t at = offset;
  for (const auto& m : merged) {
    ByteRange part = intersect(m.bytes.offset, m.bytes.end(), offset, end);
    if (part.offset > at) writes.push_back({{at, part.offset - at}, nullptr});
    writes.push_back({m.bytes, m.data.get()});
    at = part.end();
  }
  if (at < end) writes.push_back({{at, end - at}, nullptr});

  std::vector<IoResult> results(writes.size());
  {
    TaskGroup group(co_await asio::this_coro::executor);
    for (size_t i = 0; i < writes.size(); ++i) {
      auto [range, data] = writes[i];
      if (data) {
        group.spawn([](BlockDevice* d, ByteRange range, const std::byte* data,
                       IoResult* res) -> asio::awaitable<void> {
          *res = co_await d->write(range.offset, std::span(data, range.length), false);
        }(destination_.get(), range, data, &results[i]));
      } else {
        WritePayload slice = payload;
        if (!payload.zeroes) slice.data = payload.data.subspan(range.offset - offset, range.length);
        group.spawn([](CloneVolume* self, ByteRange range, WritePayload slice,
                       IoResult* res) -> asio::awaitable<void> {
          *res = co_await self->write_direct(range.offset, range.length, slice);
        }(this, range, slice, &results[i]));
      }
    }
    co_await group.wait();
  }
  for (const IoResult& r : results)
    if (!r) co_return r;
  co_return IoResult::success();
}

// Routing row TRIM: unhydrated whole regions are hydrated as zeroes without a fetch (a trimmed
// region reads zero); regions another operation is hydrating are skipped, and partial regions
// at the edges are left alone — TRIM is only a hint.
asio::awaitable<IoResult> CloneVolume::trim(uint64_t offset, uint64_t length, WriteFlags flags) {
  profile_->note(offset, length);
  if (settings_.read_only || !core_->writable()) co_return refuse_write();
  if (length == 0) co_return IoResult::success();
  auto [first, last] = map_->regions_inside(offset, length);
  const std::vector<std::shared_ptr<RegionClaim>> mine =
      core_->plan(first, last, {.kind = RegionClaim::Kind::write, .on_demand = true}).ours();
  IoResult result;
  for (const auto& claim : mine) {
    IoResult z = co_await core_->hydrate_without_data(claim, settings_.discard_passdown, false);
    if (!z && result) result = z;
  }
  if (settings_.discard_passdown && result)
    result = co_await discard_hydrated(offset, length, mine);
  if (!result) co_return result;
  if (flags.fua) co_return co_await committer_->commit();
  co_return IoResult::success();
}

// Passes a TRIM down to the destination for the parts that were hydrated before it (the
// regions `trimmed` just zeroed are discarded already).
asio::awaitable<IoResult> CloneVolume::discard_hydrated(
    uint64_t offset, uint64_t length, const std::vector<std::shared_ptr<RegionClaim>>& trimmed) {
  const uint64_t end = offset + length;
  IoResult result;
  auto [r0, r1] = map_->regions_touching(offset, length);
  for (uint64_t r = r0; r < r1;) {
    uint64_t run = map_->run_length(r, r1 - r);
    if (map_->test(r)) {
      ByteRange bytes = map_->byte_range(r, run);
      ByteRange part = intersect(bytes.offset, bytes.end(), offset, end);
      bool was_trimmed = false;
      for (const auto& c : trimmed) was_trimmed |= (r >= c->first && r < c->end());
      if (part.length && !was_trimmed) {
        IoResult d = co_await destination_->discard(part.offset, part.length);
        if (!d && result) result = d;
      }
    }
    r += run;
  }
  co_return result;
}

// ---------------------------------------------------------------------------------------
// FLUSH, CACHE, BLOCK_STATUS

asio::awaitable<IoResult> CloneVolume::flush() {
  if (committer_->failed()) co_return refuse_write();
  co_return co_await committer_->commit();
}

// Routing row CACHE: hydrate now at on-demand priority, one batch-sized claim at a time and at
// most kCacheClaimsInFlight of them, so one request cannot pin unbounded memory.
asio::awaitable<IoResult> CloneVolume::cache(uint64_t offset, uint64_t length) {
  profile_->note(offset, length);
  if (length == 0 || !core_->writable() || !settings_.copy_on_read) co_return IoResult::success();
  auto [r0, r1] = map_->regions_touching(offset, length);
  const ClaimPolicy batch{
      .kind = RegionClaim::Kind::fetch,
      .on_demand = true,
      .max_run = std::max<uint64_t>(1, core_->hydration().batch_bytes >> map_->region_shift()),
      .max_claims = 1};
  TaskGroup group(co_await asio::this_coro::executor);
  std::vector<std::shared_ptr<RegionClaim>> waits;  // ours and others', waited for alike
  for (uint64_t r = r0; r < r1;) {
    ClaimPlan plan = core_->plan(r, r1, batch);
    r = plan.end;
    for (const ClaimPlan::Run& run : plan.runs) {
      if (run.state == ClaimPlan::State::other) waits.push_back(run.claim);
      if (run.state != ClaimPlan::State::ours) continue;
      waits.push_back(run.claim);
      core_->counters().on_demand_fetches.fetch_add(1);
      group.spawn([](CloneCore* core, std::shared_ptr<RegionClaim> c) -> asio::awaitable<void> {
        co_await core->fetch(*c);
        co_await core->store(c);
      }(core_.get(), run.claim));
      while (group.running() >= kCacheClaimsInFlight)
        co_await run.claim->done.async_wait(asio::use_awaitable);
    }
  }
  co_await group.wait();
  for (const auto& c : waits) {
    co_await c->done.async_wait(asio::use_awaitable);
    if (!c->hydrated && c->fetch_result.error) co_return c->fetch_result;
  }
  co_return IoResult::success();
}

std::vector<std::string> CloneVolume::meta_contexts() const {
  return {"base:allocation", "hydrate:state"};
}

asio::awaitable<IoResult> CloneVolume::block_status(size_t context, uint64_t offset,
                                                    uint64_t length, size_t max_extents,
                                                    ExtentList& out) {
  if (context == kHydrateState) {
    map_->state_extents(offset, length, max_extents, out);
    co_return IoResult::success();
  }
  if (context != kBaseAllocation) {
    co_return IoResult::failure(EINVAL, "export " + settings_.name + ": unknown meta context");
  }
  // One run of equal hydration state per call; clients ask again for the rest.
  uint64_t r = map_->region_of(offset);
  uint64_t r_end = map_->region_of(offset + length - 1) + 1;
  uint64_t run = map_->run_length(r, r_end - r);
  ByteRange bytes = map_->byte_range(r, run);
  ByteRange part = intersect(bytes.offset, bytes.end(), offset, offset + length);
  if (map_->test(r)) {
    co_return co_await destination_->allocation(part.offset, part.length, out);
  }
  if (hydrator_->scanned(part.offset, part.length) || !core_->source_ready() ||
      core_->state() == CloneState::failed) {
    // Holes were hydrated by the allocation scan, so what is left is data.
    out.push_back({part.length, 0});
    co_return IoResult::success();
  }
  IoResult r2 = co_await source_->block_status(part.offset, part.length, out);
  if (!r2 || out.empty()) {
    out.clear();
    out.push_back({part.length, 0});
  }
  co_return IoResult::success();
}

// ---------------------------------------------------------------------------------------
// Post-commit hook, controls, status, close

asio::awaitable<IoResult> CloneVolume::discard_source(const RegionMap::Transaction& t) {
  if (!source_->can_discard()) co_return IoResult::success();
  // I6: only regions of a transaction that is already committed reach here.
  uint64_t run_start = 0, run_len = 0;
  auto flush_run = [&]() -> asio::awaitable<void> {
    if (run_len == 0) co_return;
    ByteRange b = map_->byte_range(run_start, run_len);
    IoResult r = co_await source_->discard(b.offset, b.length);
    if (!r)
      log::warn("clone.discard_source_failed", {{"export", settings_.name}, {"error", r.message}});
    run_len = 0;
  };
  for (auto [word, bits] : t.words) {
    for (unsigned b = 0; b < 64; ++b) {
      if (!(bits & (1ull << b))) continue;
      uint64_t region = word * 64 + b;
      if (run_len && run_start + run_len == region) {
        ++run_len;
      } else {
        co_await flush_run();
        run_start = region;
        run_len = 1;
      }
    }
  }
  co_await flush_run();
  co_return IoResult::success();
}

void CloneVolume::pause() {
  if (core_->state() == CloneState::hydrating) core_->set_state(CloneState::paused);
}

void CloneVolume::resume() {
  if (core_->state() == CloneState::paused) {
    HydrationSettings hs = core_->hydration();
    hs.enabled = true;
    core_->set_hydration(hs);
    core_->set_state(CloneState::hydrating);
  }
}

void CloneVolume::set_hydration(const HydrationSettings& settings) {
  core_->set_hydration(settings);
}

CloneStatus CloneVolume::status() const {
  CloneStatus s;
  s.name = settings_.name;
  s.state = core_->state();
  s.reason = core_->state_reason();
  s.size = map_->device_size();
  s.region_size = map_->region_size();
  s.regions = map_->region_count();
  s.hydrated_regions = map_->hydrated_regions();
  s.committed_regions = map_->committed_regions();
  // Exact bytes, the short last region counted as what it is: data still to fetch is derived
  // from this, and a whole region's worth of error would show on a small clone.
  uint64_t unhydrated = (s.regions - std::min(s.regions, s.hydrated_regions)) * s.region_size;
  if (s.regions && !map_->test(s.regions - 1))
    unhydrated -= std::min(unhydrated, s.regions * s.region_size - s.size);
  s.hydrated_bytes = s.size - std::min(s.size, unhydrated);
  s.regions_percent =
      s.regions ? 100.0 * static_cast<double>(s.hydrated_regions) / static_cast<double>(s.regions)
                : 100.0;
  {
    // Data copied is what the source delivered (on demand or in the background), so the data
    // rate ignores holes and client overwrites, which take no source time.
    std::lock_guard lock(rate_mutex_);
    const auto now = core_->now();
    s.rate_bytes_per_second =
        hydration_rate_.update(now, core_->counters().hydrated_bytes_total.load());
    s.data_rate_bytes_per_second = data_rate_.update(now, core_->counters().fetched_bytes.load());
  }
  const AllocationKnowledge allocation = hydrator_->allocation();
  const CopyProgress copy = copy_progress({.size = s.size,
                                           .hydrated_bytes = s.hydrated_bytes,
                                           .allocation = allocation,
                                           .complete = s.state == CloneState::complete,
                                           .data_rate = s.data_rate_bytes_per_second});
  s.allocation_scanned = copy.data_bytes_exact;
  s.data_bytes = copy.data_bytes;
  s.data_hydrated_bytes = copy.data_hydrated_bytes;
  s.data_remaining_bytes = copy.data_remaining_bytes;
  s.percent = copy.percent;
  s.eta_seconds = copy.eta_seconds;
  s.inflight_bytes = core_->counters().background_inflight_bytes.load();
  s.window_bytes = hydrator_->window();
  s.fetched_bytes = core_->counters().fetched_bytes.load();
  s.zeroed_bytes = core_->counters().zeroed_bytes.load();
  s.on_demand_fetches = core_->counters().on_demand_fetches.load();
  s.hydration_errors = core_->counters().hydration_errors.load();
  s.commits = committer_->commits();
  s.generation = store_->summary().generation;
  s.last_commit_unix_ms = committer_->last_commit_unix_ms();
  s.hydration = core_->hydration();
  s.source = source_->stats();
  s.profile = profile_->status();
  return s;
}

asio::awaitable<IoResult> CloneVolume::close() {
  if (closed_.exchange(true)) co_return IoResult::success();
  asio::post(background_, [t = connect_timer_] { t->cancel(); });
  // Background requests to a slow or dead source may wait up to source_timeout; a shutdown
  // should not. After a grace period, closing the source fails what still waits (those
  // regions are simply fetched again on the next start).
  if (!co_await hydrator_->stop_within(kCloseGrace)) {
    log::info("clone.close_cancels_source_requests",
              {{"export", settings_.name}, {"source", source_->identity()}});
    co_await source_->close();
    co_await hydrator_->stop();
  }
  // Still connecting (the source is down): nothing to wait for.
  if (!core_->source_ready()) co_await source_->close();
  co_await lifecycle_tasks_->wait();
  co_await core_->drain();
  co_await committer_->stop();
  IoResult r;
  if (core_->writable()) r = co_await committer_->commit();
  // The last recording, after any profile write a commit hook started.
  co_await core_->drain();
  co_await profile_->write_if_changed();
  co_await source_->close();
  log::info("clone.close", {{"export", settings_.name},
                            {"hydrated_regions", map_->hydrated_regions()},
                            {"regions", map_->region_count()},
                            {"state", to_string(core_->state())}});
  co_return r;
}

}  // namespace hydrate
