#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace hydrate::metadata_format {

// The on-disk layout of a clone's metadata, version 1 (docs/metadata-format.md is the
// reference; keep the two in step). Pure encoding and decoding: no I/O here, so the loader can
// be fuzzed and unit-tested byte by byte.
//
//   [0, 4096)      superblock slot 0
//   [4096, 8192)   superblock slot 1
//   [8192, ...)    bitmap: little-endian 64-bit words, bit b of word w = region 64w + b,
//                  padded with zeroes to a multiple of 4096 bytes

inline constexpr uint64_t kBlockSize = 4096;
inline constexpr uint64_t kSlotSize = 4096;
inline constexpr uint64_t kSlotCount = 2;
inline constexpr uint64_t kBitmapOffset = kSlotCount * kSlotSize;
inline constexpr uint64_t kWordsPerBlock = kBlockSize / 8;
inline constexpr uint32_t kVersion = 1;
inline constexpr std::array<char, 8> kMagic = {'H', 'Y', 'D', 'R', 'M', 'E', 'T', 'A'};
inline constexpr size_t kMaxSourceIdentity = 1024;
// Every state flag version 1 defines (kMetaFlag* in engine/metadata_store.h); others are refused.
inline constexpr uint32_t kKnownFlags = 0x3;

// Field offsets inside a slot. Magic, version and checksum keep these offsets in every future
// version, so any reader can tell "another version" from "not ours" and "corrupt".
namespace offset {
inline constexpr size_t magic = 0;                 // 8 bytes
inline constexpr size_t version = 8;               // u32
inline constexpr size_t checksum = 12;             // u32, crc32 of the slot minus this field
inline constexpr size_t generation = 16;           // u64
inline constexpr size_t slot_index = 24;           // u32
inline constexpr size_t flags = 28;                // u32
inline constexpr size_t region_size = 32;          // u32
inline constexpr size_t identity_length = 36;      // u32
inline constexpr size_t source_size = 40;          // u64
inline constexpr size_t destination_size = 48;     // u64
inline constexpr size_t region_count = 56;         // u64
inline constexpr size_t committed_regions = 64;    // u64
inline constexpr size_t commit_time_unix_ms = 72;  // u64
inline constexpr size_t clone_uuid = 80;           // 16 bytes
inline constexpr size_t bitmap_offset = 96;        // u64
inline constexpr size_t bitmap_length = 104;       // u64
inline constexpr size_t source_identity = 112;     // identity_length bytes, up to 1024
inline constexpr size_t end_of_fields = source_identity + kMaxSourceIdentity;
}  // namespace offset

using Uuid = std::array<uint8_t, 16>;

// One superblock slot's contents, decoded.
struct Superblock {
  uint32_t version = kVersion;
  uint64_t generation = 0;
  uint32_t slot_index = 0;
  uint32_t flags = 0;
  uint32_t region_size = 0;
  uint64_t source_size = 0;
  uint64_t destination_size = 0;
  uint64_t region_count = 0;
  uint64_t committed_regions = 0;
  uint64_t commit_time_unix_ms = 0;
  Uuid clone_uuid{};
  uint64_t bitmap_offset = kBitmapOffset;
  uint64_t bitmap_length = 0;
  std::string source_identity;
};

enum class SlotStatus {
  valid,
  bad_magic,            // not written by hydrate (or overwritten)
  unsupported_version,  // hydrate metadata of another format version
  bad_checksum,         // torn or corrupt
  inconsistent,         // checksum matches but the fields contradict each other
};
const char* to_string(SlotStatus status);

struct DecodedSlot {
  SlotStatus status = SlotStatus::bad_magic;
  Superblock superblock;  // meaningful for valid; best effort otherwise (for dumps)
  uint32_t stored_checksum = 0;
  uint32_t computed_checksum = 0;
  std::string problem;  // why it is not valid, e.g. "bad checksum (stored 0x…, computed 0x…)"
};

// Regions of a device of `size` bytes at `region_size`.
uint64_t region_count(uint64_t size, uint32_t region_size);
// Bytes of bitmap for `regions` regions: whole 4 KiB blocks.
uint64_t bitmap_length(uint64_t regions);
// Bytes of metadata for `regions` regions: both slots and the bitmap.
uint64_t required_size(uint64_t regions);

// The crc32 (zlib) the checksum field must hold: over the whole slot, skipping the field.
uint32_t slot_checksum(std::span<const std::byte, kSlotSize> slot);

// Serialises `superblock` into a slot image, checksum included. The identity must fit
// kMaxSourceIdentity (callers validate; longer ones are cut).
std::array<std::byte, kSlotSize> encode(const Superblock& superblock);
// Decodes the image read from slot `slot_index`, checking magic, version, checksum and the
// consistency of the fields (including that it claims to be slot `slot_index`).
DecodedSlot decode(std::span<const std::byte, kSlotSize> slot, uint32_t slot_index);

// Which slot a reader must use, or why none may be used: the valid slot with the highest
// generation. Refuses (returns the reason, prefixed by nothing) when a slot is of another
// version or is checksum-valid but inconsistent — those are not torn writes and must not be
// "repaired" by falling back — and when neither slot is valid.
struct SlotChoice {
  std::optional<int> slot;
  std::string refusal;
};
SlotChoice choose_slot(const std::array<DecodedSlot, kSlotCount>& slots);

// Bitmap words <-> little-endian bytes.
uint64_t load_word(const std::byte* bytes);
void store_word(std::byte* bytes, uint64_t word);

// "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
std::string format_uuid(const Uuid& uuid);
// A random version-4 UUID.
Uuid random_uuid();

}  // namespace hydrate::metadata_format
