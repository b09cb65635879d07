#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/export.h"

namespace hydrate {

// The changed-block map a hydrate-snap snapshot carries (kmod/, docs/kmod.md): which chunks of
// the origin changed between the previous CBT reset and the moment the snapshot was taken. It is
// frozen with the snapshot, so it is read once.
struct SnapshotCbt {
  uint32_t id = 0;            // N of /dev/hydrate-snapN
  uint64_t chunk_size = 0;    // bytes per bit
  uint64_t device_size = 0;   // bytes
  uint64_t generation = 0;    // CBT generation the bits belong to
  std::vector<uint8_t> bits;  // chunk c is bit (c % 8) of bits[c / 8]

  bool dirty(uint64_t chunk) const { return (bits[chunk / 8] >> (chunk % 8)) & 1u; }

  // Appends extents of `qemu:dirty-bitmap:*` (flag 1 = dirty, 0 = clean) for
  // [offset, offset + length), clipped to the device, merging runs of equal chunks; at most
  // `max_extents` (at least one when length > 0).
  void extents(uint64_t offset, uint64_t length, size_t max_extents, ExtentList& out) const;
};

// The metadata context name under which a snapshot's CBT is offered.
inline constexpr const char* kSnapshotCbtContext = "qemu:dirty-bitmap:cbt";
// Flag of a dirty extent in `qemu:dirty-bitmap:*` contexts (qemu's docs/interop/nbd.txt).
inline constexpr uint32_t kDirtyBitmapDirty = 1u << 0;

// The N of /dev/hydrate-snapN when `path` is a hydrate-snap snapshot device, else nothing.
std::optional<uint32_t> snapshot_device_id(const std::string& path);

// Reads the frozen CBT of snapshot `id` through /dev/hydrate-snap-ctl. Throws std::runtime_error
// naming the device and the reason (module missing, no such snapshot, API mismatch).
SnapshotCbt read_snapshot_cbt(uint32_t id);

// `plain` unchanged unless `path` is a hydrate-snap snapshot device; then `plain` decorated with
// the metadata context `qemu:dirty-bitmap:cbt`, so incremental-backup clients (qemu, nbdcopy,
// nbdinfo --map) fetch only the chunks that changed. Throws std::runtime_error when `path` is a
// snapshot device whose CBT cannot be read.
std::shared_ptr<Export> with_snapshot_cbt(std::shared_ptr<Export> plain, const std::string& path);

}  // namespace hydrate
