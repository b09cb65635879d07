#include "engine/clone/clone_volume.h"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <cstring>

#include "engine/log.h"

namespace hydrate {
namespace {

constexpr size_t kBaseAllocation = 0;
constexpr size_t kHydrateState = 1;
constexpr uint64_t kZeroRangesMinRead = 64u << 10;
// How long close() lets background fetches in flight finish before it cuts them off.
constexpr auto kCloseGrace = std::chrono::seconds(2);

uint64_t align_down(uint64_t v, uint64_t a) { return v / a * a; }

bool all_zero(const std::byte* p, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (p[i] != std::byte{0}) return false;
  return true;
}

// Intersection of [a, a_end) and [b, b_end) as a range (length 0 when disjoint).
ByteRange intersect(uint64_t a, uint64_t a_end, uint64_t b, uint64_t b_end) {
  uint64_t lo = std::max(a, b), hi = std::min(a_end, b_end);
  return lo < hi ? ByteRange{lo, hi - lo} : ByteRange{lo, 0};
}

}  // namespace

CloneVolume::~CloneVolume() = default;

asio::awaitable<IoResult> CloneVolume::open(CloneSettings settings, CloneParts parts,
                                            asio::any_io_executor background,
                                            std::shared_ptr<CloneVolume>& out) {
  std::shared_ptr<CloneVolume> volume(new CloneVolume());
  IoResult r = co_await volume->open_impl(std::move(settings), std::move(parts), background);
  if (r) out = std::move(volume);
  co_return r;
}

asio::awaitable<IoResult> CloneVolume::open_impl(CloneSettings settings, CloneParts parts,
                                                 asio::any_io_executor background) {
  settings_ = std::move(settings);
  source_ = std::move(parts.source);
  background_ = background;
  lifecycle_tasks_ = std::make_unique<TaskGroup>(background);
  connect_timer_ = std::make_shared<asio::steady_timer>(background);
  const std::string& name = settings_.name;
  uint32_t region_size = settings_.region_size;
  if (region_size != 0 && (region_size < 4096 || region_size > (1u << 30) || (region_size & (region_size - 1)) != 0)) {
    co_return IoResult::failure(EINVAL, "export " + name + ": region_size " +
                                            std::to_string(region_size) +
                                            " must be a power of two between 4KiB and 1GiB");
  }

  // Existing metadata decides the geometry; a missing or blank one means a new clone.
  CloneGeometry geometry;
  bool existing = false;
  IoResult r = parts.open_metadata(false, 0, metadata_device_);
  if (r) {
    std::vector<std::byte> head(std::min<uint64_t>(8192, metadata_device_->size()));
    r = co_await metadata_device_->read(0, head);
    if (!r) co_return r;
    existing = !head.empty() && !all_zero(head.data(), head.size());
    if (existing) {
      MetadataSummary summary;
      std::unique_ptr<RegionMap> recorded;
      r = co_await MetadataStore::inspect(*metadata_device_, geometry, summary, recorded);
      if (!r) co_return IoResult::failure(r.error, "export " + name + ": " + r.message);
    }
  } else if (r.error != ENOENT) {
    co_return r;
  }

  if (existing) {
    // I7: the same source, the same region size — or refuse, naming what differs.
    if (geometry.source_identity != source_->identity()) {
      co_return IoResult::failure(
          EINVAL, "export " + name + ": metadata " + metadata_device_->name() +
                      " belongs to source '" + geometry.source_identity +
                      "', but the configured source is '" + source_->identity() + "'");
    }
    if (region_size == 0) region_size = geometry.region_size;
    if (geometry.region_size != region_size) {
      co_return IoResult::failure(
          EINVAL, "export " + name + ": region size differs: metadata says " +
                      std::to_string(geometry.region_size) + ", configuration says " +
                      std::to_string(region_size));
    }
  } else {
    // A new clone: the source must answer so we learn its size.
    if (region_size == 0) region_size = kDefaultRegionSize;
    r = co_await source_->open();
    if (!r) {
      co_return IoResult::failure(r.error, "export " + name + ": cannot create a new clone " +
                                               "while the source is unreachable: " + r.message);
    }
    geometry.source_size = source_->size();
    geometry.destination_size = geometry.source_size;
    geometry.region_size = region_size;
    geometry.source_identity = source_->identity();
    metadata_device_.reset();
    r = parts.open_metadata(true, MetadataStore::required_size(geometry), metadata_device_);
    if (!r) co_return r;
  }

  r = parts.open_destination(geometry.destination_size, destination_);
  if (!r) co_return r;
  if (destination_->size() < geometry.destination_size) {
    co_return IoResult::failure(
        EINVAL, "export " + name + ": destination " + destination_->name() + " has " +
                    std::to_string(destination_->size()) + " bytes, the clone needs " +
                    std::to_string(geometry.destination_size));
  }

  settings_.region_size = region_size;
  if (existing && settings_.destination_zeroed) {
    // After a crash an unhydrated region may hold a client write whose bit never became
    // durable: it no longer reads zero. Skipping the zeroing of source holes would let that
    // never-acknowledged data reappear later, after a read had returned zeroes.
    log::info("clone.destination_zeroed_ignored",
              {{"export", name}, {"why", "existing clone: unhydrated regions may hold old writes"}});
    settings_.destination_zeroed = false;
  }
  map_ = std::make_unique<RegionMap>(geometry.source_size, region_size);
  if (existing) {
    r = co_await MetadataStore::open(*metadata_device_, geometry, *map_, store_);
  } else {
    r = co_await MetadataStore::create(*metadata_device_, geometry, store_);
  }
  if (!r) co_return IoResult::failure(r.error, "export " + name + ": " + r.message);

  info_.name = name;
  info_.description = settings_.description;
  info_.size = geometry.source_size;
  info_.read_only = settings_.read_only;
  info_.can_flush = true;
  info_.can_fua = true;
  info_.can_trim = true;
  info_.can_zero = true;
  info_.can_fast_zero = destination_->fast_zero();
  info_.can_cache = true;
  info_.can_multi_conn = true;  // one export-wide map, table and committer
  info_.min_block = 1;
  info_.preferred_block = 4096;

  committer_ = std::make_unique<Committer>(background, *map_, *destination_, *store_, name);
  committer_->set_skip_destination_flush(settings_.unsafe_skip_destination_flush);
  core_ = std::make_unique<CloneCore>(settings_, *source_, *destination_, *map_, *committer_,
                                      background);
  committer_->on_failure([core = core_.get()](const IoResult& failure) {
    core->enter_read_only(failure.message);
  });
  if (settings_.discard_source_after_commit) {
    committer_->add_hook([this](const RegionMap::Transaction& t) -> asio::awaitable<void> {
      co_await discard_source(t);
    });
  }
  hydrator_ = std::make_unique<Hydrator>(*core_, background);
  core_->set_wakeup([h = hydrator_.get()] { h->wake(); });

  log::info("clone.open", {{"export", name},
                           {"source", geometry.source_identity},
                           {"destination", destination_->name()},
                           {"metadata", metadata_device_->name()},
                           {"size", geometry.source_size},
                           {"region_size", region_size},
                           {"hydrated_regions", map_->hydrated_regions()},
                           {"regions", map_->region_count()},
                           {"generation", store_->summary().generation},
                           {"new", !existing}});

  committer_->start(settings_.commit_interval);
  if (map_->complete()) {
    core_->set_state(CloneState::hydrating);
  } else if (existing) {
    core_->set_state(CloneState::starting, "connecting to the source");
    lifecycle_tasks_->spawn(connect_source(geometry.source_size));
  } else {
    core_->mark_source_ready();
    core_->set_state(settings_.hydration.enabled ? CloneState::hydrating : CloneState::paused);
  }
  hydrator_->start();
  co_return IoResult::success();
}

// An existing clone starts serving at once; the source joins when it answers (§5), and only if
// it is the same size as recorded (I7).
asio::awaitable<void> CloneVolume::connect_source(uint64_t expected_size) {
  auto delay = std::chrono::milliseconds(200);
  auto timer = connect_timer_;
  while (!closed_.load()) {
    IoResult r = co_await source_->open();
    if (r) {
      if (source_->size() != expected_size) {
        std::string reason = "source size differs: metadata says " +
                             std::to_string(expected_size) + ", source " +
                             source_->identity() + " has " + std::to_string(source_->size());
        log::error("clone.wrong_source", {{"export", settings_.name}, {"reason", reason}});
        core_->set_state(CloneState::failed, reason);
        co_return;
      }
      core_->mark_source_ready();
      core_->set_state(settings_.hydration.enabled ? CloneState::hydrating : CloneState::paused);
      log::info("clone.source_connected",
                {{"export", settings_.name}, {"source", source_->identity()}});
      co_return;
    }
    log::warn("clone.source_unavailable",
              {{"export", settings_.name}, {"error", r.message}, {"retry_ms", delay.count()}});
    timer->expires_after(delay);
    std::error_code ec;
    co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    delay = std::min(delay * 2, std::chrono::milliseconds(10'000));
  }
}

IoResult CloneVolume::refuse_write() const {
  if (settings_.read_only)
    return IoResult::failure(EPERM, "export " + settings_.name + " is read-only");
  return IoResult::failure(EIO, "export " + settings_.name + " is in " +
                                    to_string(core_->state()) +
                                    " mode: " + core_->state_reason());
}

// ---------------------------------------------------------------------------------------
// READ

asio::awaitable<IoResult> CloneVolume::read(uint64_t offset, std::span<std::byte> out,
                                            std::vector<ByteRange>* zeros) {
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
  const uint64_t end = offset + out.size();
  const uint64_t size = map_->device_size();
  enum class Kind { destination, own_fetch, other_fetch, direct_source };
  struct Segment {
    ByteRange range;
    Kind kind;
    std::shared_ptr<RegionClaim> claim;
  };

  for (;;) {
    std::vector<Segment> plan;
    std::vector<std::shared_ptr<RegionClaim>> mine;
    std::shared_ptr<RegionClaim> blocker;
    {
      std::lock_guard lock(core_->table().mutex());
      bool copy = settings_.copy_on_read && core_->writable() && core_->state() != CloneState::failed;
      uint64_t window = std::max<uint64_t>(settings_.fetch_window, map_->region_size());
      uint64_t w_start = copy ? align_down(offset, window) : offset;
      uint64_t w_end = copy ? std::min(size, align_down(end + window - 1, window)) : end;
      auto [w0, w1] = map_->regions_touching(w_start, w_end - w_start);
      uint64_t r = w0;
      while (r < w1) {
        ByteRange bytes = core_->bytes_of(r, 1);
        if (map_->test(r)) {
          uint64_t run = map_->run_length(r, w1 - r);
          ByteRange run_bytes = core_->bytes_of(r, run);
          ByteRange part = intersect(run_bytes.offset, run_bytes.end(), offset, end);
          if (part.length) plan.push_back({part, Kind::destination, nullptr});
          r += run;
          continue;
        }
        if (auto other = core_->table().find(r)) {
          uint64_t stop = std::min(other->end(), w1);
          ByteRange run_bytes = core_->bytes_of(r, stop - r);
          ByteRange part = intersect(run_bytes.offset, run_bytes.end(), offset, end);
          if (part.length) {
            if (other->kind == RegionClaim::Kind::write) {
              blocker = other;
              break;
            }
            plan.push_back({part, Kind::other_fetch, other});
          }
          r = stop;
          continue;
        }
        uint64_t run = std::min(map_->run_length(r, w1 - r), core_->table().next_claimed(r) - r);
        ByteRange run_bytes = core_->bytes_of(r, run);
        ByteRange part = intersect(run_bytes.offset, run_bytes.end(), offset, end);
        if (copy) {
          auto claim = core_->table().insert(RegionClaim::Kind::fetch, r, run, true);
          mine.push_back(claim);
          if (part.length) plan.push_back({part, Kind::own_fetch, claim});
        } else if (part.length) {
          plan.push_back({part, Kind::direct_source, nullptr});
        }
        (void)bytes;
        r += run;
      }
      if (blocker) {
        // Nobody can have seen our claims yet: we held the lock throughout.
        for (auto& c : mine) core_->table().erase(*c);
      }
    }
    if (blocker) {
      for (auto& c : mine) {
        c->data_ready.set();
        c->done.set();
      }
      co_await blocker->done.async_wait(asio::use_awaitable);
      continue;
    }

    // Execute: our fetches, destination reads and direct source reads all at once.
    auto executor = co_await asio::this_coro::executor;
    core_->counters().on_demand_inflight.fetch_add(mine.size());
    core_->counters().on_demand_fetches.fetch_add(mine.size());
    std::vector<IoResult> results(plan.size());
    {
      TaskGroup group(executor);
      for (auto& claim : mine) {
        group.spawn([](CloneCore* core, std::shared_ptr<RegionClaim> c) -> asio::awaitable<void> {
          co_await core->fetch(*c);
        }(core_.get(), claim));
      }
      for (size_t i = 0; i < plan.size(); ++i) {
        Segment& s = plan[i];
        auto slice = out.subspan(s.range.offset - offset, s.range.length);
        if (s.kind == Kind::destination) {
          group.spawn([](BlockDevice* d, uint64_t at, std::span<std::byte> buf,
                         IoResult* res) -> asio::awaitable<void> {
            *res = co_await d->read(at, buf);
          }(destination_.get(), s.range.offset, slice, &results[i]));
        } else if (s.kind == Kind::direct_source) {
          group.spawn([](CloneCore* core, uint64_t at, std::span<std::byte> buf,
                         IoResult* res) -> asio::awaitable<void> {
            *res = co_await core->read_source(at, buf);
          }(core_.get(), s.range.offset, slice, &results[i]));
        }
      }
      co_await group.wait();
    }
    core_->counters().on_demand_inflight.fetch_sub(mine.size());

    // Copy fetched bytes (ours and other operations') into the reply.
    for (size_t i = 0; i < plan.size(); ++i) {
      Segment& s = plan[i];
      if (s.kind != Kind::own_fetch && s.kind != Kind::other_fetch) continue;
      co_await s.claim->data_ready.async_wait(asio::use_awaitable);
      if (!s.claim->fetch_result || !s.claim->data) {
        results[i] = s.claim->fetch_result ? IoResult::failure(EIO, "fetch abandoned")
                                           : s.claim->fetch_result;
        continue;
      }
      std::memcpy(out.data() + (s.range.offset - offset),
                  s.claim->data.get() + (s.range.offset - s.claim->bytes.offset), s.range.length);
    }
    // Copy-on-read: the write-back continues after the reply (store() releases the claim).
    for (auto& claim : mine) core_->spawn_tracked(core_->store(claim));

    for (auto& r : results) {
      if (!r) co_return IoResult::failure(r.error ? r.error : EIO, r.message);
    }
    co_return IoResult::success();
  }
}

// ---------------------------------------------------------------------------------------
// WRITE, WRITE_ZEROES, TRIM

asio::awaitable<IoResult> CloneVolume::write(uint64_t offset, std::span<const std::byte> data,
                                             WriteFlags flags) {
  if (settings_.read_only || !core_->writable()) co_return refuse_write();
  WritePayload payload;
  payload.data = data;
  co_return co_await write_impl(offset, data.size(), payload, flags.fua);
}

asio::awaitable<IoResult> CloneVolume::zero(uint64_t offset, uint64_t length, ZeroFlags flags) {
  if (settings_.read_only || !core_->writable()) co_return refuse_write();
  if (flags.fast_only && !destination_->fast_zero()) {
    co_return IoResult::failure(ENOTSUP, "export " + settings_.name +
                                             ": destination cannot zero quickly");
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
  if (payload.zeroes) co_return co_await destination_->write_zeroes(offset, length, payload.may_unmap);
  co_return co_await destination_->write(offset, payload.data.subspan(0, length), false);
}

asio::awaitable<IoResult> CloneVolume::write_impl(uint64_t offset, uint64_t length,
                                                  WritePayload payload, bool fua) {
  if (length == 0) co_return IoResult::success();
  const uint64_t end = offset + length;
  auto [r0, r1] = map_->regions_touching(offset, length);

  std::vector<std::shared_ptr<RegionClaim>> mine;
  if (!map_->all_set(r0, r1 - r0)) {
    for (;;) {
      std::shared_ptr<RegionClaim> blocker;
      {
        std::lock_guard lock(core_->table().mutex());
        // Wait for any claim on these regions first (I5), then claim every unhydrated run.
        for (uint64_t r = r0; r < r1;) {
          uint64_t claimed = core_->table().next_claimed(r);
          if (claimed >= r1) break;
          blocker = core_->table().find(claimed);
          break;
        }
        if (!blocker) {
          if (payload.fast_only) {
            // A partial region that is not hydrated needs a source fetch: not fast.
            bool head_partial = offset > map_->region_range(r0).offset && !map_->test(r0);
            bool tail_partial = end < map_->region_range(r1 - 1).end() && !map_->test(r1 - 1);
            if (head_partial || tail_partial) {
              co_return IoResult::failure(ENOTSUP, "export " + settings_.name +
                                                       ": zeroing part of an unhydrated region " +
                                                       "needs a source read");
            }
          }
          for (uint64_t r = r0; r < r1;) {
            if (map_->test(r)) {
              r += map_->run_length(r, r1 - r);
              continue;
            }
            uint64_t run = map_->run_length(r, r1 - r);
            mine.push_back(core_->table().insert(RegionClaim::Kind::write, r, run, true));
            r += run;
          }
        }
      }
      if (!blocker) break;
      co_await blocker->done.async_wait(asio::use_awaitable);
    }
  }

  // Partial regions among ours need their source bytes merged in (one fetch each).
  struct Merged {
    uint64_t region;
    ByteRange bytes;
    std::unique_ptr<std::byte[]> data;
    IoResult result;
  };
  std::vector<Merged> merged;
  for (auto& claim : mine) {
    for (uint64_t region : {claim->first, claim->end() - 1}) {
      ByteRange bytes = map_->region_range(region);
      bool partial = offset > bytes.offset || end < bytes.end();
      bool seen = !merged.empty() && merged.back().region == region;
      if (partial && !seen) merged.push_back({region, bytes, nullptr, {}});
    }
  }
  auto executor = co_await asio::this_coro::executor;
  if (!merged.empty()) {
    TaskGroup group(executor);
    for (auto& m : merged) {
      m.data.reset(new std::byte[m.bytes.length]);
      group.spawn([](CloneCore* core, Merged* m) -> asio::awaitable<void> {
        m->result = co_await core->read_source(m->bytes.offset,
                                               std::span(m->data.get(), m->bytes.length));
      }(core_.get(), &m));
    }
    co_await group.wait();
    for (auto& m : merged) {
      if (!m.result) {
        for (auto& c : mine) core_->release(c, false);
        co_return m.result;
      }
      ByteRange part = intersect(m.bytes.offset, m.bytes.end(), offset, end);
      std::byte* at = m.data.get() + (part.offset - m.bytes.offset);
      if (payload.zeroes)
        std::memset(at, 0, part.length);
      else
        std::memcpy(at, payload.data.data() + (part.offset - offset), part.length);
    }
  }

  // One destination write per merged region, plus the client's bytes for everything else.
  std::vector<std::pair<ByteRange, const std::byte*>> writes;  // null data = payload
  uint64_t at = offset;
  for (auto& m : merged) {
    ByteRange part = intersect(m.bytes.offset, m.bytes.end(), offset, end);
    if (part.offset > at) writes.push_back({{at, part.offset - at}, nullptr});
    writes.push_back({m.bytes, m.data.get()});
    at = part.end();
  }
  if (at < end) writes.push_back({{at, end - at}, nullptr});

  std::vector<IoResult> results(writes.size());
  {
    TaskGroup group(executor);
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
  for (auto& r : results) {
    if (!r) {
      for (auto& c : mine) core_->release(c, false);
      core_->enter_read_only("destination write failed: " + r.message);
      co_return IoResult::failure(EIO, "export " + settings_.name + ": " + r.message);
    }
  }
  for (auto& c : mine) core_->release(c, true);

  // FUA (I4): the data and the bits of any region this write hydrated are durable on return.
  if (fua) co_return co_await committer_->commit();
  co_return IoResult::success();
}

asio::awaitable<IoResult> CloneVolume::trim(uint64_t offset, uint64_t length, WriteFlags flags) {
  if (settings_.read_only || !core_->writable()) co_return refuse_write();
  if (length == 0) co_return IoResult::success();
  const uint64_t end = offset + length;
  const uint64_t size = map_->device_size();
  // Regions entirely inside the range (the short last region counts if the range reaches the
  // end). Partial regions at the edges are left alone: TRIM is only a hint.
  uint64_t rs = map_->region_size();
  uint64_t first = (offset + rs - 1) >> map_->region_shift();
  uint64_t last = end >= size ? map_->region_count() : (end >> map_->region_shift());

  // Unhydrated whole regions: hydrated as zeroes, no fetch (a trimmed region reads zero).
  std::vector<std::shared_ptr<RegionClaim>> mine;
  {
    std::lock_guard lock(core_->table().mutex());
    for (uint64_t r = first; r < last;) {
      if (map_->test(r)) {
        r += map_->run_length(r, last - r);
        continue;
      }
      if (auto other = core_->table().find(r)) {
        r = other->end();  // someone is hydrating it already; a hint can skip it
        continue;
      }
      uint64_t run = std::min(map_->run_length(r, last - r), core_->table().next_claimed(r) - r);
      mine.push_back(core_->table().insert(RegionClaim::Kind::write, r, run, true));
      r += run;
    }
  }
  IoResult result;
  for (auto& claim : mine) {
    IoResult z = co_await core_->hydrate_without_data(claim, settings_.discard_passdown, false);
    if (!z && result) result = z;
  }
  // Hydrated parts: pass the discard down to the destination when configured.
  if (settings_.discard_passdown && result) {
    auto [r0, r1] = map_->regions_touching(offset, length);
    for (uint64_t r = r0; r < r1;) {
      uint64_t run = map_->run_length(r, r1 - r);
      if (map_->test(r)) {
        ByteRange bytes = core_->bytes_of(r, run);
        ByteRange part = intersect(bytes.offset, bytes.end(), offset, end);
        bool was_ours = false;
        for (auto& c : mine) was_ours |= (r >= c->first && r < c->end());
        if (part.length && !was_ours) {
          IoResult d = co_await destination_->discard(part.offset, part.length);
          if (!d && result) result = d;
        }
      }
      r += run;
    }
  }
  if (!result) co_return result;
  if (flags.fua) co_return co_await committer_->commit();
  co_return IoResult::success();
}

// ---------------------------------------------------------------------------------------
// FLUSH, CACHE, BLOCK_STATUS

asio::awaitable<IoResult> CloneVolume::flush() {
  if (committer_->failed()) co_return refuse_write();
  co_return co_await committer_->commit();
}

asio::awaitable<IoResult> CloneVolume::cache(uint64_t offset, uint64_t length) {
  if (length == 0 || !core_->writable() || !settings_.copy_on_read) co_return IoResult::success();
  auto [r0, r1] = map_->regions_touching(offset, length);
  HydrationSettings hs = core_->hydration();
  uint64_t chunk = std::max<uint64_t>(1, hs.batch_bytes >> map_->region_shift());
  auto executor = co_await asio::this_coro::executor;
  TaskGroup group(executor);
  std::vector<std::shared_ptr<RegionClaim>> mine;
  uint64_t r = r0;
  while (r < r1) {
    std::shared_ptr<RegionClaim> claim;
    {
      std::lock_guard lock(core_->table().mutex());
      if (map_->test(r)) {
        r += map_->run_length(r, r1 - r);
        continue;
      }
      if (auto other = core_->table().find(r)) {
        mine.push_back(other);  // wait for it like for our own
        r = other->end();
        continue;
      }
      uint64_t run = std::min({map_->run_length(r, r1 - r), chunk,
                               core_->table().next_claimed(r) - r});
      claim = core_->table().insert(RegionClaim::Kind::fetch, r, run, true);
    }
    r = claim->end();
    mine.push_back(claim);
    core_->counters().on_demand_fetches.fetch_add(1);
    group.spawn([](CloneCore* core, std::shared_ptr<RegionClaim> c) -> asio::awaitable<void> {
      core->counters().on_demand_inflight.fetch_add(1);
      co_await core->fetch(*c);
      core->counters().on_demand_inflight.fetch_sub(1);
      co_await core->store(c);
    }(core_.get(), claim));
    // Bound the memory one CACHE request can pin.
    while (group.running() >= 16) co_await mine.back()->done.async_wait(asio::use_awaitable);
  }
  co_await group.wait();
  for (auto& c : mine) {
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
  ByteRange bytes = core_->bytes_of(r, run);
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
    ByteRange b = core_->bytes_of(run_start, run_len);
    IoResult r = co_await source_->discard(b.offset, b.length);
    if (!r) log::warn("clone.discard_source_failed", {{"export", settings_.name}, {"error", r.message}});
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

void CloneVolume::set_hydration(const HydrationSettings& settings) { core_->set_hydration(settings); }

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
  uint64_t full = s.hydrated_regions == s.regions
                      ? s.size
                      : std::min<uint64_t>(s.size, s.hydrated_regions * s.region_size);
  s.hydrated_bytes = full;
  s.percent = s.regions ? 100.0 * static_cast<double>(s.hydrated_regions) /
                              static_cast<double>(s.regions)
                        : 100.0;
  {
    std::lock_guard lock(rate_mutex_);
    auto now = std::chrono::steady_clock::now();
    uint64_t total = core_->counters().hydrated_bytes_total.load();
    if (rate_time_ != std::chrono::steady_clock::time_point{}) {
      double dt = std::chrono::duration<double>(now - rate_time_).count();
      if (dt >= 0.2) {
        double sample = static_cast<double>(total - rate_bytes_) / dt;
        rate_ = rate_ == 0 ? sample : 0.5 * rate_ + 0.5 * sample;
        rate_time_ = now;
        rate_bytes_ = total;
      }
    } else {
      rate_time_ = now;
      rate_bytes_ = total;
    }
    s.rate_bytes_per_second = rate_;
  }
  uint64_t remaining = s.size - std::min(s.size, s.hydrated_bytes);
  s.eta_seconds = s.state == CloneState::complete ? 0
                  : s.rate_bytes_per_second > 0
                      ? static_cast<double>(remaining) / s.rate_bytes_per_second
                      : -1;
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
  co_await source_->close();
  log::info("clone.close", {{"export", settings_.name},
                            {"hydrated_regions", map_->hydrated_regions()},
                            {"regions", map_->region_count()},
                            {"state", to_string(core_->state())}});
  co_return r;
}

}  // namespace hydrate
