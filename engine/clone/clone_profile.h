#pragma once

#include <asio/awaitable.hpp>
#include <atomic>
#include <memory>
#include <string>

#include "engine/clone/clone_settings.h"
#include "engine/clone/clone_status.h"
#include "engine/profile/access_recorder.h"
#include "engine/profile/prefetch_order.h"
#include "engine/region_map.h"

namespace hydrate {

class CloneCore;

// A clone's boot profiles: the recording of its clients' first touches, and the profile(s) it
// prefetches (docs/profile-format.md). Kept out of request routing so CloneVolume only calls
// note() per request and after_commit() per commit.
class CloneProfile {
 public:
  // Loads the prefetch profiles (refusing, with a `profile.refused` warning, any that does
  // not decode or does not fit `map`) and starts recording when a file is known.
  CloneProfile(const ProfileSettings& settings, const std::string& export_name,
               const std::string& source_identity, const RegionMap& map);

  // A client request touched [offset, offset + length). Cheap once recording stopped.
  void note(uint64_t offset, uint64_t length);

  // The profile-first order for the hydrator; null without usable profiles.
  std::shared_ptr<PrefetchOrder> prefetch() const { return prefetch_; }

  // A commit finished: write the recording if it changed, as a tracked task on the blocking
  // pool, so neither the commit nor client requests wait for it. One write at a time.
  void after_commit(CloneCore& core);
  // Writes the recording now if it changed (close()).
  asio::awaitable<void> write_if_changed();

  ProfileStatus status() const;
  const std::string& record_file() const { return record_file_; }

 private:
  std::string export_name_;
  const RegionMap& map_;
  std::string record_file_;
  std::unique_ptr<AccessRecorder> recorder_;
  std::shared_ptr<PrefetchOrder> prefetch_;
  std::atomic<bool> writing_{false};
  std::atomic<uint64_t> written_version_{0};
};

}  // namespace hydrate
