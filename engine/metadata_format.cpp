#include "engine/metadata_format.h"

#include <zlib.h>

#include <bit>
#include <cstdio>
#include <cstring>
#include <random>

#include "engine/region_map.h"

namespace hydrate::metadata_format {

namespace {

template <typename T>
T get(std::span<const std::byte, kSlotSize> slot, size_t at) {
  T value = 0;
  for (size_t i = 0; i < sizeof(T); ++i)
    value |= static_cast<T>(std::to_integer<uint8_t>(slot[at + i])) << (8 * i);
  return value;
}

template <typename T>
void put(std::array<std::byte, kSlotSize>& slot, size_t at, T value) {
  for (size_t i = 0; i < sizeof(T); ++i) slot[at + i] = static_cast<std::byte>(value >> (8 * i));
}

std::string hex32(uint32_t value) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08x", value);
  return text;
}

std::string hex_bytes(std::span<const std::byte> bytes) {
  std::string text;
  for (std::byte b : bytes) {
    char pair[4];
    std::snprintf(pair, sizeof pair, "%02x", std::to_integer<unsigned>(b));
    if (!text.empty()) text += ' ';
    text += pair;
  }
  return text;
}

// Why the fields of a checksum-valid slot cannot describe a clone; empty when they can.
std::string inconsistency(const Superblock& sb, uint32_t slot_index, uint32_t identity_length) {
  auto n = [](uint64_t v) { return std::to_string(v); };
  if (sb.slot_index != slot_index)
    return "it claims to be slot " + n(sb.slot_index) + " but was read from slot " + n(slot_index);
  if (!valid_region_size(sb.region_size))
    return "region size " + n(sb.region_size) + " " + region_size_problem(sb.region_size);
  if ((sb.flags & ~kKnownFlags) != 0)
    return "unknown state flags " + hex32(sb.flags & ~kKnownFlags);
  if (identity_length > kMaxSourceIdentity)
    return "source identity length " + n(identity_length) + " exceeds " + n(kMaxSourceIdentity);
  const uint64_t regions = region_count(sb.source_size, sb.region_size);
  if (sb.region_count != regions)
    return "region count " + n(sb.region_count) + " does not match source size " +
           n(sb.source_size) + " at region size " + n(sb.region_size) + " (" + n(regions) + ")";
  if (regions > RegionMap::kMaxRegions)
    return "region count " + n(regions) + " exceeds the limit " + n(RegionMap::kMaxRegions);
  if (sb.destination_size < sb.source_size)
    return "destination size " + n(sb.destination_size) + " is smaller than source size " +
           n(sb.source_size);
  if (sb.committed_regions > regions)
    return "committed region count " + n(sb.committed_regions) + " exceeds region count " +
           n(regions);
  if (sb.bitmap_offset != kBitmapOffset)
    return "bitmap offset " + n(sb.bitmap_offset) + " is not " + n(kBitmapOffset);
  if (sb.bitmap_length != bitmap_length(regions))
    return "bitmap length " + n(sb.bitmap_length) + " does not fit " + n(regions) + " regions (" +
           n(bitmap_length(regions)) + ")";
  return {};
}

}  // namespace

const char* to_string(SlotStatus status) {
  switch (status) {
    case SlotStatus::valid:
      return "valid";
    case SlotStatus::bad_magic:
      return "bad magic";
    case SlotStatus::unsupported_version:
      return "unsupported version";
    case SlotStatus::bad_checksum:
      return "bad checksum";
    case SlotStatus::inconsistent:
      return "inconsistent";
  }
  return "?";
}

uint64_t region_count(uint64_t size, uint32_t region_size) {
  const unsigned shift = static_cast<unsigned>(std::countr_zero(region_size));
  return (size >> shift) + ((size & (uint64_t{region_size} - 1)) ? 1 : 0);
}

uint64_t bitmap_length(uint64_t regions) {
  const uint64_t words = (regions + 63) / 64;
  const uint64_t blocks = (words + kWordsPerBlock - 1) / kWordsPerBlock;
  return blocks * kBlockSize;
}

uint64_t required_size(uint64_t regions) {
  return kBitmapOffset + bitmap_length(regions);
}

uint32_t slot_checksum(std::span<const std::byte, kSlotSize> slot) {
  const auto* bytes = reinterpret_cast<const Bytef*>(slot.data());
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, bytes, offset::checksum);
  const size_t after = offset::checksum + 4;
  crc = crc32(crc, bytes + after, static_cast<uInt>(kSlotSize - after));
  return static_cast<uint32_t>(crc);
}

std::array<std::byte, kSlotSize> encode(const Superblock& sb) {
  std::array<std::byte, kSlotSize> slot{};
  std::memcpy(slot.data() + offset::magic, kMagic.data(), kMagic.size());
  put<uint32_t>(slot, offset::version, sb.version);
  put<uint64_t>(slot, offset::generation, sb.generation);
  put<uint32_t>(slot, offset::slot_index, sb.slot_index);
  put<uint32_t>(slot, offset::flags, sb.flags);
  put<uint32_t>(slot, offset::region_size, sb.region_size);
  const size_t identity_length = std::min(sb.source_identity.size(), kMaxSourceIdentity);
  put<uint32_t>(slot, offset::identity_length, static_cast<uint32_t>(identity_length));
  put<uint64_t>(slot, offset::source_size, sb.source_size);
  put<uint64_t>(slot, offset::destination_size, sb.destination_size);
  put<uint64_t>(slot, offset::region_count, sb.region_count);
  put<uint64_t>(slot, offset::committed_regions, sb.committed_regions);
  put<uint64_t>(slot, offset::commit_time_unix_ms, sb.commit_time_unix_ms);
  std::memcpy(slot.data() + offset::clone_uuid, sb.clone_uuid.data(), sb.clone_uuid.size());
  put<uint64_t>(slot, offset::bitmap_offset, sb.bitmap_offset);
  put<uint64_t>(slot, offset::bitmap_length, sb.bitmap_length);
  std::memcpy(slot.data() + offset::source_identity, sb.source_identity.data(), identity_length);
  put<uint32_t>(slot, offset::checksum, slot_checksum(slot));
  return slot;
}

DecodedSlot decode(std::span<const std::byte, kSlotSize> slot, uint32_t slot_index) {
  DecodedSlot out;
  if (std::memcmp(slot.data() + offset::magic, kMagic.data(), kMagic.size()) != 0) {
    out.status = SlotStatus::bad_magic;
    out.problem = "bad magic (found " + hex_bytes(slot.subspan(offset::magic, kMagic.size())) +
                  ", expected \"HYDRMETA\")";
    return out;
  }
  Superblock& sb = out.superblock;
  sb.version = get<uint32_t>(slot, offset::version);
  out.stored_checksum = get<uint32_t>(slot, offset::checksum);
  out.computed_checksum = slot_checksum(slot);
  if (sb.version != kVersion) {
    out.status = SlotStatus::unsupported_version;
    out.problem = "unsupported format version " + std::to_string(sb.version) +
                  " (this hydrate reads version " + std::to_string(kVersion) + ")";
    return out;
  }
  sb.generation = get<uint64_t>(slot, offset::generation);
  sb.slot_index = get<uint32_t>(slot, offset::slot_index);
  sb.flags = get<uint32_t>(slot, offset::flags);
  sb.region_size = get<uint32_t>(slot, offset::region_size);
  const uint32_t identity_length = get<uint32_t>(slot, offset::identity_length);
  sb.source_size = get<uint64_t>(slot, offset::source_size);
  sb.destination_size = get<uint64_t>(slot, offset::destination_size);
  sb.region_count = get<uint64_t>(slot, offset::region_count);
  sb.committed_regions = get<uint64_t>(slot, offset::committed_regions);
  sb.commit_time_unix_ms = get<uint64_t>(slot, offset::commit_time_unix_ms);
  std::memcpy(sb.clone_uuid.data(), slot.data() + offset::clone_uuid, sb.clone_uuid.size());
  sb.bitmap_offset = get<uint64_t>(slot, offset::bitmap_offset);
  sb.bitmap_length = get<uint64_t>(slot, offset::bitmap_length);
  sb.source_identity.assign(reinterpret_cast<const char*>(slot.data() + offset::source_identity),
                            std::min<size_t>(identity_length, kMaxSourceIdentity));
  if (out.stored_checksum != out.computed_checksum) {
    out.status = SlotStatus::bad_checksum;
    out.problem = "bad checksum (stored " + hex32(out.stored_checksum) + ", computed " +
                  hex32(out.computed_checksum) + ")";
    return out;
  }
  // A region size that is not a power of two would make region_count() meaningless.
  std::string why = inconsistency(sb, slot_index, identity_length);
  if (!why.empty()) {
    out.status = SlotStatus::inconsistent;
    out.problem = "inconsistent: " + why;
    return out;
  }
  out.status = SlotStatus::valid;
  return out;
}

SlotChoice choose_slot(const std::array<DecodedSlot, kSlotCount>& slots) {
  auto slot_name = [](size_t i) { return "superblock slot " + std::to_string(i); };
  for (size_t i = 0; i < kSlotCount; ++i)
    if (slots[i].status == SlotStatus::unsupported_version)
      return {std::nullopt, slot_name(i) + " has " + slots[i].problem};
  for (size_t i = 0; i < kSlotCount; ++i)
    if (slots[i].status == SlotStatus::inconsistent)
      return {std::nullopt, slot_name(i) + " is " + slots[i].problem};
  const bool valid0 = slots[0].status == SlotStatus::valid;
  const bool valid1 = slots[1].status == SlotStatus::valid;
  if (valid0 && valid1) {
    const uint64_t g0 = slots[0].superblock.generation, g1 = slots[1].superblock.generation;
    if (g0 == g1)
      return {std::nullopt, "both superblock slots hold generation " + std::to_string(g0)};
    return {g0 > g1 ? 0 : 1, {}};
  }
  if (valid0) return {0, {}};
  if (valid1) return {1, {}};
  if (slots[0].status == SlotStatus::bad_magic && slots[1].status == SlotStatus::bad_magic)
    return {std::nullopt, "not hydrate metadata: bad magic in both superblock slots (slot 0: " +
                              slots[0].problem + "; slot 1: " + slots[1].problem + ")"};
  if (slots[0].status == SlotStatus::bad_checksum && slots[1].status == SlotStatus::bad_checksum)
    return {std::nullopt, "bad checksum in both superblock slots (slot 0: " + slots[0].problem +
                              "; slot 1: " + slots[1].problem + ")"};
  return {std::nullopt, "no valid superblock (slot 0: " + slots[0].problem +
                            "; slot 1: " + slots[1].problem + ")"};
}

uint64_t load_word(const std::byte* bytes) {
  uint64_t word = 0;
  for (int i = 0; i < 8; ++i) word |= uint64_t{std::to_integer<uint8_t>(bytes[i])} << (8 * i);
  return word;
}

void store_word(std::byte* bytes, uint64_t word) {
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<std::byte>(word >> (8 * i));
}

std::string format_uuid(const Uuid& uuid) {
  std::string text;
  for (size_t i = 0; i < uuid.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) text += '-';
    char pair[4];
    std::snprintf(pair, sizeof pair, "%02x", uuid[i]);
    text += pair;
  }
  return text;
}

Uuid random_uuid() {
  std::random_device device;
  Uuid uuid;
  for (size_t i = 0; i < uuid.size(); i += 4) {
    const uint32_t value = device();
    for (size_t j = 0; j < 4; ++j) uuid[i + j] = static_cast<uint8_t>(value >> (8 * j));
  }
  uuid[6] = static_cast<uint8_t>((uuid[6] & 0x0f) | 0x40);  // version 4 (random)
  uuid[8] = static_cast<uint8_t>((uuid[8] & 0x3f) | 0x80);  // RFC 4122 variant
  return uuid;
}

}  // namespace hydrate::metadata_format
