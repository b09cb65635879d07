#pragma once

#include <array>
#include <asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "engine/block_device.h"
#include "engine/io_result.h"
#include "engine/metadata_format.h"
#include "engine/region_map.h"

namespace hydrate {

// What a clone's metadata must agree with before it is used (I7). Recorded at creation,
// compared on every open; any difference refuses to start with a message naming the field
// and both values.
struct CloneGeometry {
  uint64_t source_size = 0;
  uint64_t destination_size = 0;  // bytes of the destination the clone uses (= source size)
  uint32_t region_size = 0;
  std::string source_identity;  // e.g. "nbd://backup/vm1" or "file:/dev/sdb"
};

// What an existing clone's metadata must match before it is used (I7). A field that is not set
// is not known (yet) and is adopted from the metadata: the region size when the configuration
// leaves it to the metadata, the source size until the source answers.
struct MetadataExpectations {
  std::optional<std::string> source_identity;
  std::optional<uint32_t> region_size;
  std::optional<uint64_t> source_size;
  std::optional<uint64_t> destination_size;

  // Every field of `geometry` expected.
  static MetadataExpectations exactly(const CloneGeometry& geometry);
};

// State flags kept in the superblock.
inline constexpr uint32_t kMetaFlagComplete = 1u << 0;  // every region hydrated and committed
inline constexpr uint32_t kMetaFlagSourceDiscarded = 1u << 1;  // discard_source_after_commit ran

struct MetadataSummary {
  uint64_t generation = 0;
  uint32_t flags = 0;
  uint64_t committed_regions = 0;
  uint64_t commit_time_unix_ms = 0;
  int active_slot = -1;
};

// The on-disk region map (docs/metadata-format.md): two alternating checksummed superblock
// slots followed by the bitmap. commit() is phase two of DESIGN.md §3 I2 — the caller has
// already swapped the dirty set and flushed the destination:
//   write the bitmap blocks holding the transaction's words -> flush metadata ->
//   write the superblock (generation + 1, checksum) into the older slot -> flush metadata.
// Bitmap blocks are rewritten in place; that is safe under torn writes only because bits are
// monotonic within a generation (I3).
class MetadataStore {
 public:
  // Bytes of metadata a clone of this geometry needs (meaningful once geometry_problem() is
  // empty).
  static uint64_t required_size(const CloneGeometry& geometry);
  // Why `geometry` cannot be recorded, naming the field and value (region size not a power of
  // two in [4 KiB, 1 GiB], empty source, destination smaller than the source, identity empty
  // or over 1 KiB, too many regions); empty when it can. create() refuses with this message.
  static std::string geometry_problem(const CloneGeometry& geometry);

  // Formats `device`: both superblock slots (generation 1 and 0), a zero bitmap, flushed.
  // Fails with ENOSPC if the device is smaller than required_size().
  static asio::awaitable<IoResult> create(BlockDevice& device, const CloneGeometry& geometry,
                                          std::unique_ptr<MetadataStore>& out);

  // Reads the newest valid superblock, checks magic, version, checksum and that its geometry
  // meets `expected` (I7), then loads the bitmap into a new `map` built for the recorded
  // geometry. Any refusal is EINVAL with a message naming the cause: wrong magic, unsupported
  // version, bad checksum in both slots, truncated device, or which geometry field differs
  // and both values.
  static asio::awaitable<IoResult> open(BlockDevice& device, const MetadataExpectations& expected,
                                        std::unique_ptr<RegionMap>& map,
                                        std::unique_ptr<MetadataStore>& out);

  // I7 for what becomes known after open(): the same check and message as open() makes, for
  // the fields set in `expected` (the source's size once it answers).
  IoResult check(const MetadataExpectations& expected) const;

  // Reads superblocks and bitmap without expectations (for `hydrate meta check|dump`).
  // `geometry` receives what is recorded; `map` is created to match it.
  static asio::awaitable<IoResult> inspect(BlockDevice& device, CloneGeometry& geometry,
                                           MetadataSummary& summary,
                                           std::unique_ptr<RegionMap>& map);

  // Phase two of a commit (see above). Each bitmap block written holds, word by word,
  // map.committed_word(w) | the transaction's bits for w — never a live bit outside the
  // transaction (its data may not be flushed yet). `transaction` is what
  // RegionMap::begin_commit() returned; the caller calls RegionMap::finish_commit() after.
  // `flags` replaces the superblock flags. On failure nothing recorded earlier is lost (the
  // active slot is never written) and summary() is unchanged. An empty transaction with
  // unchanged flags writes nothing. Commits must not overlap (the caller serialises them).
  asio::awaitable<IoResult> commit(const RegionMap& map, const RegionMap::Transaction& transaction,
                                   uint32_t flags);

  // Reads and decodes both superblock slots, whatever their state (for dumps and tests). Fails
  // only when the device cannot be read or is too small to hold them.
  static asio::awaitable<IoResult> read_superblocks(
      BlockDevice& device, std::array<metadata_format::DecodedSlot, 2>& slots);

  const CloneGeometry& geometry() const { return geometry_; }
  const MetadataSummary& summary() const { return summary_; }
  // The superblock in the active slot (what the last successful commit or create wrote).
  const metadata_format::Superblock& superblock() const { return active_; }

  ~MetadataStore();

 private:
  MetadataStore(BlockDevice& device, CloneGeometry geometry, metadata_format::Superblock active,
                int active_slot);
  // Reads the bitmap `sb` describes into a new map of its geometry (open() and inspect()).
  static asio::awaitable<IoResult> load_map(BlockDevice& device,
                                            const metadata_format::Superblock& sb,
                                            std::unique_ptr<RegionMap>& map);

  // Writes the bitmap blocks holding `transaction`'s words (phase two, step one).
  asio::awaitable<IoResult> write_bitmap_blocks(const RegionMap& map,
                                                const RegionMap::Transaction& transaction);

  BlockDevice& device_;
  CloneGeometry geometry_;
  MetadataSummary summary_;
  metadata_format::Superblock active_;
};

}  // namespace hydrate
