#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <mutex>

#include "engine/block_device.h"
#include "engine/clone/clone_core.h"
#include "engine/clone/clone_profile.h"
#include "engine/clone/clone_settings.h"
#include "engine/clone/clone_status.h"
#include "engine/clone/committer.h"
#include "engine/clone/hydrator.h"
#include "engine/clone/rate_estimator.h"
#include "engine/export.h"
#include "engine/metadata_store.h"
#include "engine/region_map.h"
#include "engine/source.h"

namespace hydrate {

// What a clone is made of. The devices are opened through callbacks because their sizes are
// only known once the metadata (or, for a new clone, the source) has been read.
struct CloneParts {
  std::unique_ptr<Source> source;
  // Open the destination for a clone of `size` bytes (a file may be created or grown).
  std::function<IoResult(uint64_t size, std::unique_ptr<BlockDevice>& out)> open_destination;
  // Open existing metadata (`create` false; a missing file is ENOENT), or create/grow it to at
  // least `size` bytes (`create` true).
  std::function<IoResult(bool create, uint64_t size, std::unique_ptr<BlockDevice>& out)>
      open_metadata;
  // The time for status rates (`rate_bytes_per_second`, `data_rate_bytes_per_second`) and for
  // the hydrator's "a client read a moment ago" (CloneCore::now()); tests pass a fake clock so
  // rates, the ETA and background decisions are deterministic. Empty: steady_clock::now.
  std::function<std::chrono::steady_clock::time_point()> clock;
};

// A clone export (DESIGN.md §4): serves the source's contents at once from the destination
// where hydrated and from the source elsewhere, copying on demand and in the background, with
// the region map committed only after the destination is flushed.
class CloneVolume final : public Export {
 public:
  // Loads (or creates) the metadata, checks I7, and starts the commit loop, the source
  // connection and background hydration. An existing clone starts even while its source is
  // unreachable; a new one needs the source to learn its size.
  static asio::awaitable<IoResult> open(CloneSettings settings, CloneParts parts,
                                        asio::any_io_executor background,
                                        std::shared_ptr<CloneVolume>& out);
  ~CloneVolume() override;

  // Export
  const ExportInfo& info() const override { return info_; }
  asio::awaitable<IoResult> read(uint64_t offset, std::span<std::byte> out,
                                 std::vector<ByteRange>* zeros) override;
  asio::awaitable<IoResult> write(uint64_t offset, std::span<const std::byte> data,
                                  WriteFlags flags) override;
  asio::awaitable<IoResult> flush() override;
  asio::awaitable<IoResult> trim(uint64_t offset, uint64_t length, WriteFlags flags) override;
  asio::awaitable<IoResult> zero(uint64_t offset, uint64_t length, ZeroFlags flags) override;
  asio::awaitable<IoResult> cache(uint64_t offset, uint64_t length) override;
  std::vector<std::string> meta_contexts() const override;
  asio::awaitable<IoResult> block_status(size_t context, uint64_t offset, uint64_t length,
                                         size_t max_extents, ExtentList& out) override;

  // Operator controls (`hydrate ctl`).
  CloneStatus status() const;
  void pause();
  void resume();
  void set_hydration(const HydrationSettings& settings);
  HydrationSettings hydration() const { return core_->hydration(); }

  // Stops background work, waits for in-flight operations, commits, releases the source.
  asio::awaitable<IoResult> close();

  // Set once every region is hydrated and committed.
  AsyncEvent& completed() { return hydrator_->completed(); }
  RegionMap& region_map() { return *map_; }

 private:
  CloneVolume() = default;

  struct WritePayload {
    std::span<const std::byte> data;  // empty for zeroes
    bool zeroes = false;
    bool may_unmap = true;
    bool fast_only = false;
  };

  // A partial region of a write, fetched and merged with the client's bytes.
  struct MergedRegion {
    uint64_t region;
    ByteRange bytes;
    std::unique_ptr<std::byte[]> data;
    IoResult result;
  };

  // Opening (clone_open.cpp), in order.
  asio::awaitable<IoResult> open_impl(CloneSettings settings, CloneParts parts,
                                      asio::any_io_executor background);
  asio::awaitable<IoResult> open_metadata(CloneParts& parts, bool& existing,
                                          CloneGeometry& geometry);
  void build_engine(std::function<std::chrono::steady_clock::time_point()> clock);
  void start(bool existing);
  asio::awaitable<void> connect_source();

  // READ of regions not all hydrated: plan, then execute (clone_volume.cpp).
  asio::awaitable<IoResult> read_slow(uint64_t offset, std::span<std::byte> out);
  ClaimPlan plan_read(uint64_t offset, uint64_t length);
  asio::awaitable<IoResult> execute_read(const ClaimPlan& plan, uint64_t offset,
                                         std::span<std::byte> out);
  // The part of a run's bytes inside [offset, end).
  ByteRange client_part(const ClaimPlan::Run& run, uint64_t offset, uint64_t end) const;

  // WRITE and WRITE_ZEROES: claim, merge partial regions, write.
  asio::awaitable<IoResult> write_impl(uint64_t offset, uint64_t length, WritePayload payload,
                                       bool fua);
  asio::awaitable<IoResult> claim_for_write(uint64_t offset, uint64_t length, bool fast_only,
                                            std::vector<std::shared_ptr<RegionClaim>>& mine);
  std::vector<MergedRegion> partial_regions(const std::vector<std::shared_ptr<RegionClaim>>& mine,
                                            uint64_t offset, uint64_t length) const;
  asio::awaitable<IoResult> fetch_and_merge(std::vector<MergedRegion>& merged, uint64_t offset,
                                            uint64_t length, const WritePayload& payload);
  asio::awaitable<IoResult> write_pieces(const std::vector<MergedRegion>& merged, uint64_t offset,
                                         uint64_t length, const WritePayload& payload);
  asio::awaitable<IoResult> write_direct(uint64_t offset, uint64_t length,
                                         const WritePayload& payload);
  asio::awaitable<IoResult> discard_hydrated(
      uint64_t offset, uint64_t length, const std::vector<std::shared_ptr<RegionClaim>>& trimmed);
  asio::awaitable<IoResult> discard_source(const RegionMap::Transaction& transaction);
  IoResult refuse_write() const;

  CloneSettings settings_;
  ExportInfo info_;
  std::unique_ptr<Source> source_;
  std::unique_ptr<BlockDevice> destination_;
  std::unique_ptr<BlockDevice> metadata_device_;
  std::unique_ptr<RegionMap> map_;
  std::unique_ptr<MetadataStore> store_;
  // Before the committer and core: their hooks and tracked tasks refer to it.
  std::unique_ptr<CloneProfile> profile_;
  std::unique_ptr<Committer> committer_;
  std::unique_ptr<CloneCore> core_;
  std::unique_ptr<Hydrator> hydrator_;
  asio::any_io_executor background_;
  std::unique_ptr<TaskGroup> lifecycle_tasks_;
  std::shared_ptr<asio::steady_timer> connect_timer_;
  std::atomic<bool> closed_{false};

  // Rate estimates for status: regions hydrated (holes included) and data fetched.
  mutable std::mutex rate_mutex_;
  mutable RateEstimator hydration_rate_;
  mutable RateEstimator data_rate_;
};

}  // namespace hydrate
