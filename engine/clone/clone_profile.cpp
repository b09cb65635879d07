#include "engine/clone/clone_profile.h"

#include <filesystem>

#include "engine/blocking_pool.h"
#include "engine/clone/clone_core.h"
#include "engine/log.h"

namespace hydrate {

CloneProfile::CloneProfile(const ProfileSettings& settings, const std::string& export_name,
                           const std::string& source_identity, const RegionMap& map)
    : export_name_(export_name), map_(map) {
  const std::string by_identity =
      settings.dir.empty()
          ? std::string()
          : (std::filesystem::path(settings.dir) / profile_file_name(source_identity)).string();

  // Explicit prefetch files, or the one profile.dir holds for this source.
  std::vector<std::string> files = settings.prefetch;
  bool found_in_dir = false;
  if (files.empty() && !by_identity.empty() && std::filesystem::exists(by_identity)) {
    files.push_back(by_identity);
    found_in_dir = true;
  }
  std::vector<AccessProfile> loaded;
  std::vector<std::string> used;
  for (const std::string& file : files) {
    AccessProfile p;
    std::string why = load_profile(file, p);
    if (why.empty()) {
      why = profile_mismatch(p, map.device_size(), map.region_size());
      if (!why.empty()) why = "profile " + file + ": " + why;
    }
    if (!why.empty()) {
      // Advisory input: the clone proceeds without it.
      log::warn("profile.refused", {{"export", export_name_}, {"file", file}, {"reason", why}});
      continue;
    }
    loaded.push_back(std::move(p));
    used.push_back(file);
  }
  if (!loaded.empty()) {
    AccessProfile merged;
    // Every input was checked against this clone's geometry, so they agree with each other.
    merge_profiles(loaded, merged);
    prefetch_ = std::make_shared<PrefetchOrder>(merged.runs);
    std::string names;
    for (const std::string& f : used) names += (names.empty() ? "" : ",") + f;
    log::info("profile.prefetch", {{"export", export_name_},
                                   {"files", names},
                                   {"found_in_dir", found_in_dir},
                                   {"regions", prefetch_->regions()}});
  }

  record_file_ = !settings.file.empty() ? settings.file : by_identity;
  if (settings.record && !record_file_.empty()) {
    recorder_ = std::make_unique<AccessRecorder>(
        map.device_size(), map.region_size(), source_identity,
        AccessRecorder::Limits{settings.record_limit_bytes, settings.record_time});
    log::info("profile.recording", {{"export", export_name_},
                                    {"file", record_file_},
                                    {"limit_bytes", settings.record_limit_bytes},
                                    {"limit_ms", settings.record_time.count()}});
  } else {
    record_file_.clear();
  }
}

void CloneProfile::note(uint64_t offset, uint64_t length) {
  if (!recorder_ || !recorder_->recording() || length == 0) return;
  auto [first, end] = map_.regions_touching(offset, length);
  recorder_->note(first, end);
}

void CloneProfile::after_commit(CloneCore& core) {
  if (!recorder_ || recorder_->version() == written_version_.load()) return;
  if (writing_.exchange(true)) return;  // the running write picks up later touches next time
  core.spawn_tracked([](CloneProfile* self) -> asio::awaitable<void> {
    co_await self->write_if_changed();
    self->writing_.store(false);
  }(this));
}

asio::awaitable<void> CloneProfile::write_if_changed() {
  if (!recorder_) co_return;
  const uint64_t version = recorder_->version();
  if (version == written_version_.load()) co_return;
  auto job = [profile = recorder_->snapshot(), file = record_file_] {
    return write_profile_file(file, profile);
  };
  std::string error = co_await BlockingPool::shared().run(std::move(job));
  if (!error.empty()) {
    log::warn("profile.write_failed", {{"export", export_name_}, {"error", error}});
    co_return;
  }
  written_version_.store(version);
  log::debug("profile.written", {{"export", export_name_},
                                 {"file", record_file_},
                                 {"regions", recorder_->recorded_regions()}});
}

ProfileStatus CloneProfile::status() const {
  ProfileStatus s;
  s.file = record_file_;
  if (recorder_) {
    s.recording = recorder_->recording();
    s.recorded_regions = recorder_->recorded_regions();
  }
  if (prefetch_) {
    s.prefetch_regions = prefetch_->regions();
    s.prefetch_remaining = prefetch_->remaining(map_);
  }
  return s;
}

}  // namespace hydrate
