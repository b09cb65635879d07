#include "engine/clone/hydrator.h"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <cmath>

#include "engine/clone/background_admission.h"
#include "engine/log.h"
#include "engine/metadata_store.h"

namespace hydrate {
namespace {

// The allocation map is fetched in chunks this large (NBD lengths are 32-bit), several at once,
// so a 1 TiB source needs a handful of round trips rather than one per region.
constexpr uint64_t kScanChunk = 1ull << 30;
constexpr unsigned kScanParallel = 4;
// Hole runs are zeroed on the destination in pieces of at most this, so one huge hole does not
// hold a claim (and block client writes to it) for long.
constexpr uint64_t kHolePiece = 1ull << 30;
// Pause between passes when batches failed (source errors): the source is retried, not hammered.
constexpr auto kRetryPause = std::chrono::seconds(1);
// How far past a client's miss readahead copies (ReadaheadHints), doubling while the reader
// streams through it. Large from the start: a boot reads clusters of files the file system
// placed together (bench (f), the boot trace at 20 ms + 100 Mbit/s: 4 MiB then up to 16 MiB
// 14.3 s; 256 KiB then up to 16 MiB 16.7 s; 1 MiB fixed 18.0 s; none 41.8 s).
constexpr uint64_t kReadaheadInitial = 4u << 20;
constexpr uint64_t kReadaheadMax = 16u << 20;
// How long after its last read at the source a client still counts as reading (its next read
// is usually one round trip of think time away): the batch round trip, within these bounds.
constexpr auto kReadingLingerMin = std::chrono::milliseconds(5);
constexpr auto kReadingLingerMax = std::chrono::milliseconds(100);
constexpr auto kReadingLingerUnmeasured = std::chrono::milliseconds(20);
using Clock = std::chrono::steady_clock;

}  // namespace

Hydrator::Hydrator(CloneCore& core, asio::any_io_executor executor)
    : core_(core),
      executor_(executor),
      wake_timer_(std::make_shared<asio::steady_timer>(executor)),
      limiter_(core.hydration().rate_bytes_per_second),
      window_(core.hydration().batch_bytes, core.map().region_size(),
              core.hydration().max_inflight_bytes),
      batches_(executor),
      readahead_(kReadaheadInitial >> core.map().region_shift(),
                 kReadaheadMax >> core.map().region_shift(), core.map().region_count()) {
  uint64_t chunks = (core_.map().device_size() + kScanChunk - 1) / kScanChunk;
  scanned_chunks_.assign(chunks, false);
  chunk_hole_bytes_.assign(chunks, 0);
}

Hydrator::~Hydrator() = default;

void Hydrator::start() {
  running_.store(true);
  asio::co_spawn(executor_, run(), asio::detached);
}

void Hydrator::wake() {
  asio::post(executor_, [timer = std::weak_ptr<asio::steady_timer>(wake_timer_)] {
    if (auto t = timer.lock()) t->cancel();
  });
}

asio::awaitable<void> Hydrator::stop() {
  stopping_.store(true);
  wake();
  if (running_.load()) co_await stopped_event_.async_wait(asio::use_awaitable);
}

asio::awaitable<bool> Hydrator::stop_within(std::chrono::steady_clock::duration grace) {
  stopping_.store(true);
  wake();
  if (!running_.load()) co_return true;
  co_return co_await stopped_event_.async_wait_for(grace, asio::use_awaitable);
}

bool Hydrator::scanned(uint64_t offset, uint64_t length) const {
  if (length == 0) return true;
  std::lock_guard lock(scan_mutex_);
  for (uint64_t c = offset / kScanChunk; c <= (offset + length - 1) / kScanChunk; ++c) {
    if (c >= scanned_chunks_.size() || !scanned_chunks_[c]) return false;
  }
  return true;
}

AllocationKnowledge Hydrator::allocation() const {
  std::lock_guard lock(scan_mutex_);
  AllocationKnowledge k;
  k.scanned = true;
  for (size_t c = 0; c < scanned_chunks_.size(); ++c) {
    k.hole_bytes += chunk_hole_bytes_[c];
    k.scanned = k.scanned && scanned_chunks_[c];
  }
  return k;
}

asio::awaitable<void> Hydrator::sleep(std::chrono::steady_clock::duration d) {
  auto timer = wake_timer_;
  timer->expires_after(d);
  std::error_code ec;
  co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

asio::awaitable<void> Hydrator::wait_source() {
  while (!stopping_.load() && !core_.source_ready() && core_.writable()) {
    co_await sleep(std::chrono::milliseconds(200));
  }
}

asio::awaitable<void> Hydrator::run() {
  if (!core_.map().complete()) co_await wait_source();

  bool scanned_once = false;
  uint64_t cursor = 0;
  bool failures_this_pass = false;
  while (!stopping_.load()) {
    HydrationSettings settings = core_.hydration();
    limiter_.set_rate(settings.rate_bytes_per_second);
    window_.set_limits(settings.batch_bytes, settings.max_inflight_bytes);

    if (!core_.writable()) {
      co_await sleep(std::chrono::seconds(1));
      continue;
    }
    if (core_.map().complete()) {
      co_await batches_.wait();
      co_await finish();
      break;
    }
    if (!settings.enabled || core_.state() == CloneState::paused) {
      co_await sleep(std::chrono::seconds(1));
      continue;
    }
    if (!scanned_once) {
      co_await scan_allocation();
      scanned_once = true;
      continue;
    }
    const SourceLoad load = source_load();
    // Requests, too: a source serves only so many at once, and clients' reads need some of them.
    if (load.background_batches > 0 &&
        load.background_batches >= std::max(1u, core_.source().parallelism())) {
      co_await sleep(std::chrono::milliseconds(250));  // a batch's end wakes us
      continue;
    }
    RegionMap& map = core_.map();
    auto batch_of = [&](uint64_t bytes) {
      // Unclaimed runs are claimed one batch at most; others' claims are skipped.
      return ClaimPolicy{.kind = RegionClaim::Kind::fetch,
                         .on_demand = false,
                         .max_run = std::max<uint64_t>(1, bytes >> map.region_shift()),
                         .max_claims = 1};
    };
    // The boot profile first (what clients read last time, in order; it may fill the window);
    // then readahead after clients' latest misses, then the next unhydrated, unclaimed run at
    // or after the cursor. Readahead is a guess — a random reader gains nothing from it — so it
    // is held to the walk's share while clients read (bench (f): no slower for a boot).
    std::shared_ptr<RegionClaim> claim;
    const uint64_t bulk_bytes = allowance(settings, load, BackgroundKind::bulk);
    if (uint64_t bytes =
            std::max(bulk_bytes, allowance(settings, load, BackgroundKind::predicted))) {
      claim = claim_prefetch(batch_of(bytes));
    }
    if (!claim && bulk_bytes > 0) claim = claim_readahead(batch_of(bulk_bytes));
    if (!claim) {
      if (bulk_bytes == 0) {
        // A batch's end or the last client read leaving wakes us; else the reader's linger
        // ends by itself.
        const Clock::duration linger = reading_left(load);
        co_await sleep(linger > Clock::duration::zero() ? linger : std::chrono::milliseconds(250));
        continue;
      }
      const ClaimPolicy batch = batch_of(bulk_bytes);
      uint64_t next = map.find_first_clear(cursor);
      if (next >= map.region_count()) {
        // End of a pass. Regions left behind were claimed by on-demand work that may have failed,
        // or failed batches of ours: wait for what is in flight, then start over.
        if (batches_.running() > 0 || failures_this_pass) {
          co_await sleep(failures_this_pass
                             ? std::chrono::steady_clock::duration(kRetryPause)
                             : std::chrono::steady_clock::duration(std::chrono::milliseconds(100)));
        } else if (map.find_first_clear(0) < map.region_count()) {
          // Someone else (on-demand) holds the rest; give them a moment.
          co_await sleep(std::chrono::milliseconds(50));
        }
        failures_this_pass = false;
        cursor = 0;
        continue;
      }
      std::vector<std::shared_ptr<RegionClaim>> ours =
          core_.plan(next, map.region_count(), batch).ours();
      if (ours.empty()) {
        cursor = map.region_count();
        continue;
      }
      claim = ours.front();
      cursor = claim->end();
    }
    uint64_t bytes = map.byte_range(claim->first, claim->count).length;
    // Pace to the rate limit. Wake-ups (a batch finished) cut sleeps short, so sleep until
    // the deadline rather than for a duration.
    auto resume_at = std::chrono::steady_clock::now() + limiter_.reserve(bytes);
    while (!stopping_.load() && std::chrono::steady_clock::now() < resume_at)
      co_await sleep(resume_at - std::chrono::steady_clock::now());
    core_.counters().background_inflight_bytes.fetch_add(bytes);
    inflight_requests_.fetch_add(1);
    batches_.spawn(copy_batch(claim));
    if (failed_batches_.exchange(0) > 0) failures_this_pass = true;
  }
  co_await batches_.wait();
  running_.store(false);
  stopped_event_.set();
}

SourceLoad Hydrator::source_load() const {
  const auto& counters = core_.counters();
  SourceLoad load{.window = window_.window(),
                  .background_bytes = counters.background_inflight_bytes.load(),
                  .background_batches = inflight_requests_.load(),
                  .on_demand_bytes = counters.on_demand_inflight_bytes.load()};
  load.clients_reading = reading_left(load) > Clock::duration::zero();
  return load;
}

uint64_t Hydrator::allowance(const HydrationSettings& settings, const SourceLoad& load,
                             BackgroundKind kind) const {
  return background_allowance(load, window_.batch(), core_.map().region_size(),
                              settings.min_share_percent / 100.0, kind);
}

// A client that waits for one read before it sends the next leaves the source idle for about
// a round trip at most; until then it counts as still reading.
std::chrono::steady_clock::duration Hydrator::reading_left(const SourceLoad& load) const {
  if (load.on_demand_bytes > 0) return std::chrono::milliseconds(250);  // its end wakes us
  const int64_t last = core_.counters().on_demand_last_done_ns.load();
  if (last == 0) return Clock::duration::zero();
  Clock::duration linger = window_.min_latency();
  linger = linger == Clock::duration::zero()
               ? kReadingLingerUnmeasured
               : std::clamp<Clock::duration>(linger, kReadingLingerMin, kReadingLingerMax);
  const Clock::duration since = core_.now().time_since_epoch() - Clock::duration(last);
  return since >= linger ? Clock::duration::zero() : linger - since;
}

void Hydrator::note_miss(uint64_t first_region, uint64_t end_region) {
  readahead_.note_miss(first_region, end_region);
  wake();
}

// The next batch after the newest readahead hint still holding unhydrated, unclaimed regions.
std::shared_ptr<RegionClaim> Hydrator::claim_readahead(const ClaimPolicy& batch) {
  RegionMap& map = core_.map();
  while (std::optional<ReadaheadHints::Range> hint = readahead_.take_newest()) {
    const uint64_t next = map.find_first_clear(hint->first);
    if (next >= hint->end) continue;
    ClaimPlan plan = core_.plan(next, hint->end, batch);
    std::vector<std::shared_ptr<RegionClaim>> ours = plan.ours();
    if (ours.empty()) {
      if (plan.end > next) readahead_.put_back({plan.end, hint->end});
      continue;
    }
    readahead_.put_back({ours.front()->end(), hint->end});
    return ours.front();
  }
  return nullptr;
}

// The next batch of the profile-first phase, or null once the profile is exhausted. Regions
// already hydrated or claimed by others are skipped; the planner's rules hold as for any batch.
std::shared_ptr<RegionClaim> Hydrator::claim_prefetch(const ClaimPolicy& batch) {
  if (!prefetch_) return nullptr;
  while (std::optional<ProfileRun> run = prefetch_->next(core_.map(), batch.max_run)) {
    std::vector<std::shared_ptr<RegionClaim>> ours =
        core_.plan(run->first, run->end(), batch).ours();
    if (!ours.empty()) return ours.front();
  }
  prefetch_.reset();
  return nullptr;
}

asio::awaitable<void> Hydrator::copy_batch(std::shared_ptr<RegionClaim> claim) {
  auto started = std::chrono::steady_clock::now();
  IoResult r = co_await core_.fetch(*claim);
  uint64_t bytes = claim->bytes.length;
  if (r) {
    window_.on_complete(bytes, std::chrono::steady_clock::now() - started);
  } else {
    failed_batches_.fetch_add(1);
    log::warn("hydrate.batch_failed", {{"export", core_.name()},
                                       {"offset", claim->bytes.offset},
                                       {"length", bytes},
                                       {"error", r.message}});
  }
  co_await core_.store(claim);
  core_.counters().background_inflight_bytes.fetch_sub(bytes);
  inflight_requests_.fetch_sub(1);
  wake();
}

asio::awaitable<void> Hydrator::scan_allocation() {
  TaskGroup scans(executor_);
  uint64_t chunks = scanned_chunks_.size();
  for (uint64_t c = 0; c < chunks && !stopping_.load(); ++c) {
    while (scans.running() >= kScanParallel) co_await sleep(std::chrono::milliseconds(5));
    scans.spawn(scan_chunk(c));
  }
  co_await scans.wait();
  log::info("hydrate.allocation_scanned", {{"export", core_.name()},
                                           {"hydrated_regions", core_.map().hydrated_regions()},
                                           {"regions", core_.map().region_count()}});
}

asio::awaitable<void> Hydrator::scan_chunk(uint64_t chunk) {
  uint64_t size = core_.map().device_size();
  uint64_t offset = chunk * kScanChunk;
  uint64_t end = std::min(size, offset + kScanChunk);
  bool complete_scan = true;
  uint64_t hole_bytes = 0;  // assigned, not added, to the chunk's entry: a re-scan recounts
  while (offset < end && !stopping_.load()) {
    ExtentList extents;
    IoResult r = co_await core_.source().block_status(offset, end - offset, extents);
    if (!r || extents.empty()) {
      // Without allocation information everything counts as data: correct, only slower.
      if (!r)
        log::warn("hydrate.block_status_failed",
                  {{"export", core_.name()}, {"offset", offset}, {"error", r.message}});
      complete_scan = r.ok();
      break;
    }
    for (const Extent& e : extents) {
      uint64_t length = std::min(e.length, end - offset);
      if (length == 0) break;
      if (e.flags & kAllocationZero) {
        // Counted before the holes are hydrated, so progress never shows them as data done.
        auto [first, last] = core_.map().regions_inside(offset, length);
        if (first < last) hole_bytes += core_.map().byte_range(first, last - first).length;
        {
          std::lock_guard lock(scan_mutex_);
          chunk_hole_bytes_[chunk] = hole_bytes;
        }
        co_await hydrate_hole(offset, length);
      }
      offset += length;
      if (offset >= end) break;
    }
  }
  if (complete_scan) {
    std::lock_guard lock(scan_mutex_);
    scanned_chunks_[chunk] = true;
  }
}

// Hydrates every region lying entirely inside a zero range of the source, without moving data.
asio::awaitable<void> Hydrator::hydrate_hole(uint64_t offset, uint64_t length) {
  RegionMap& map = core_.map();
  auto [first, last] = map.regions_inside(offset, length);
  const ClaimPolicy piece{.kind = RegionClaim::Kind::write,
                          .on_demand = false,
                          .max_run = std::max<uint64_t>(1, kHolePiece >> map.region_shift()),
                          .max_claims = 1};
  for (uint64_t r = first; r < last && !stopping_.load();) {
    ClaimPlan plan = core_.plan(r, last, piece);
    r = plan.end;
    for (const auto& claim : plan.ours()) {
      IoResult z = co_await core_.hydrate_without_data(claim, true, true);
      if (!z) co_return;
    }
  }
}

asio::awaitable<void> Hydrator::finish() {
  // Complete means hydrated *and* committed: make the last bits durable, then record it.
  IoResult r = co_await core_.committer().commit();
  if (r) {
    core_.committer().set_flags(core_.committer().flags() | kMetaFlagComplete);
    r = co_await core_.committer().commit();
  }
  if (!r) {
    log::error("clone.complete_commit_failed", {{"export", core_.name()}, {"error", r.message}});
    co_return;
  }
  core_.set_state(CloneState::complete);
  log::info("clone.complete", {{"export", core_.name()},
                               {"bytes", core_.map().device_size()},
                               {"fetched_bytes", core_.counters().fetched_bytes.load()}});
  co_await core_.source().close();
  completed_.set();
}

}  // namespace hydrate
