// Opening a clone: the metadata decides the geometry of an existing clone (checked against the
// source, I7), the source that of a new one; then the destination, the commit loop, the source
// connection and background hydration start. Routing lives in clone_volume.cpp.
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>

#include "engine/clone/clone_volume.h"
#include "engine/log.h"
#include "engine/region_size.h"

namespace hydrate {
namespace {

// How much of the metadata device tells a blank one (a new clone) from a used one.
constexpr uint64_t kBlankCheckBytes = 8192;

bool all_zero(const std::byte* p, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (p[i] != std::byte{0}) return false;
  return true;
}

IoResult with_export(const std::string& name, const IoResult& r) {
  return IoResult::failure(r.error, "export " + name + ": " + r.message);
}

}  // namespace

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
  if (settings_.region_size != 0) {
    if (std::string why = region_size_problem(settings_.region_size); !why.empty())
      co_return IoResult::failure(EINVAL, "export " + name + ": region_size " +
                                              std::to_string(settings_.region_size) + " " + why);
  }

  bool existing = false;
  CloneGeometry geometry;
  IoResult r = co_await open_metadata(parts, existing, geometry);
  if (!r) co_return r;
  r = parts.open_destination(geometry.destination_size, destination_);
  if (!r) co_return r;
  if (destination_->size() < geometry.destination_size) {
    co_return IoResult::failure(EINVAL, "export " + name + ": destination " + destination_->name() +
                                            " has " + std::to_string(destination_->size()) +
                                            " bytes, the clone needs " +
                                            std::to_string(geometry.destination_size));
  }
  if (!existing) {
    map_ = std::make_unique<RegionMap>(geometry.source_size, geometry.region_size);
    r = co_await MetadataStore::create(*metadata_device_, geometry, store_);
    if (!r) co_return with_export(name, r);
  }

  settings_.region_size = store_->geometry().region_size;
  if (existing && settings_.destination_zeroed) {
    // After a crash an unhydrated region may hold a client write whose bit never became
    // durable: it no longer reads zero. Skipping the zeroing of source holes would let that
    // never-acknowledged data reappear later, after a read had returned zeroes.
    log::info(
        "clone.destination_zeroed_ignored",
        {{"export", name}, {"why", "existing clone: unhydrated regions may hold old writes"}});
    settings_.destination_zeroed = false;
  }
  build_engine(std::move(parts.clock));
  start(existing);
  co_return IoResult::success();
}

// Existing metadata is opened against what the configuration and the source identity say (I7);
// a missing or blank one means a new clone, whose geometry only the source can tell: it must
// answer now. `geometry` is the clone's either way; store_ and map_ are set for an existing
// clone, a metadata device of the right size is open for a new one.
asio::awaitable<IoResult> CloneVolume::open_metadata(CloneParts& parts, bool& existing,
                                                     CloneGeometry& geometry) {
  const std::string& name = settings_.name;
  IoResult r = parts.open_metadata(false, 0, metadata_device_);
  if (!r && r.error != ENOENT) co_return r;
  if (r) {
    std::vector<std::byte> head(std::min<uint64_t>(kBlankCheckBytes, metadata_device_->size()));
    r = co_await metadata_device_->read(0, head);
    if (!r) co_return r;
    existing = !head.empty() && !all_zero(head.data(), head.size());
  }
  if (existing) {
    MetadataExpectations expected;
    expected.source_identity = source_->identity();
    if (settings_.region_size != 0) expected.region_size = settings_.region_size;
    r = co_await MetadataStore::open(*metadata_device_, expected, map_, store_);
    if (!r) co_return with_export(name, r);
    geometry = store_->geometry();
    co_return IoResult::success();
  }

  r = co_await source_->open();
  if (!r) {
    co_return IoResult::failure(r.error, "export " + name + ": cannot create a new clone " +
                                             "while the source is unreachable: " + r.message);
  }
  geometry.source_size = source_->size();
  geometry.destination_size = geometry.source_size;
  geometry.region_size = settings_.region_size != 0 ? settings_.region_size : kDefaultRegionSize;
  geometry.source_identity = source_->identity();
  metadata_device_.reset();
  co_return parts.open_metadata(true, MetadataStore::required_size(geometry), metadata_device_);
}

// The parts that serve and hydrate the clone, once the map and the devices are open.
void CloneVolume::build_engine(std::function<std::chrono::steady_clock::time_point()> clock) {
  const std::string& name = settings_.name;
  info_.name = name;
  info_.description = settings_.description;
  info_.size = map_->device_size();
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

  committer_ = std::make_unique<Committer>(background_, *map_, *destination_, *store_, name);
  committer_->set_skip_destination_flush(settings_.unsafe_skip_destination_flush);
  core_ = std::make_unique<CloneCore>(settings_, *source_, *destination_, *map_, *committer_,
                                      background_);
  core_->set_clock(std::move(clock));
  committer_->on_failure(
      [core = core_.get()](const IoResult& failure) { core->enter_read_only(failure.message); });
  if (settings_.discard_source_after_commit) {
    committer_->add_hook([this](const RegionMap::Transaction& t) -> asio::awaitable<void> {
      co_await discard_source(t);
    });
  }
  profile_ = std::make_unique<CloneProfile>(settings_.profile, name,
                                            store_->geometry().source_identity, *map_);
  committer_->add_hook([this](const RegionMap::Transaction&) -> asio::awaitable<void> {
    if (!closed_.load()) profile_->after_commit(*core_);
    co_return;
  });
  hydrator_ = std::make_unique<Hydrator>(*core_, background_);
  hydrator_->set_prefetch(profile_->prefetch());
  core_->set_wakeup([h = hydrator_.get()] { h->wake(); });
}

// Starts the commit loop and hydration. A complete clone needs no source; an existing one
// starts serving at once and connects to its source in the background; a new one has it.
void CloneVolume::start(bool existing) {
  const CloneGeometry& geometry = store_->geometry();
  log::info("clone.open", {{"export", settings_.name},
                           {"source", geometry.source_identity},
                           {"destination", destination_->name()},
                           {"metadata", metadata_device_->name()},
                           {"size", geometry.source_size},
                           {"region_size", geometry.region_size},
                           {"hydrated_regions", map_->hydrated_regions()},
                           {"regions", map_->region_count()},
                           {"generation", store_->summary().generation},
                           {"new", !existing}});

  committer_->start(settings_.commit_interval);
  if (map_->complete()) {
    core_->set_state(CloneState::hydrating);
  } else if (existing) {
    core_->set_state(CloneState::starting, "connecting to the source");
    lifecycle_tasks_->spawn(connect_source());
  } else {
    core_->mark_source_ready();
    core_->set_state(settings_.hydration.enabled ? CloneState::hydrating : CloneState::paused);
  }
  hydrator_->start();
}

// An existing clone's source joins when it answers (§5), and only if it is the size the metadata
// recorded (I7); otherwise the clone fails, naming both sizes.
asio::awaitable<void> CloneVolume::connect_source() {
  auto delay = std::chrono::milliseconds(200);
  auto timer = connect_timer_;
  while (!closed_.load()) {
    IoResult r = co_await source_->open();
    if (r) {
      MetadataExpectations answered;
      answered.source_size = source_->size();
      if (IoResult same = store_->check(answered); !same) {
        std::string reason = same.message + " (source " + source_->identity() + ")";
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

}  // namespace hydrate
