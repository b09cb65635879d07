#include "engine/metadata_format.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>
#include <set>

#include "tests/unit/metadata/metadata_test_util.h"

namespace hydrate {
namespace {

namespace fmt = metadata_format;
using test::contains;
using Slot = std::array<std::byte, fmt::kSlotSize>;

fmt::Superblock sample(uint32_t slot_index = 0, uint64_t generation = 7) {
  fmt::Superblock sb;
  sb.generation = generation;
  sb.slot_index = slot_index;
  sb.flags = 0x1;
  sb.region_size = 65536;
  sb.source_size = (uint64_t{1} << 30) + 100;
  sb.destination_size = uint64_t{1} << 31;
  sb.region_count = 16385;
  sb.committed_regions = 42;
  sb.commit_time_unix_ms = 1700000000123;
  for (size_t i = 0; i < 16; ++i) sb.clone_uuid[i] = static_cast<uint8_t>(0xa0 + i);
  sb.bitmap_offset = 8192;
  sb.bitmap_length = 4096;
  sb.source_identity = "nbd+unix:///vm1?socket=/run/src.sock";
  return sb;
}

uint64_t read_le(const Slot& slot, size_t at, size_t width) {
  uint64_t value = 0;
  for (size_t i = 0; i < width; ++i)
    value |= uint64_t{std::to_integer<uint8_t>(slot[at + i])} << (8 * i);
  return value;
}

template <typename T>
void write_le(Slot& slot, size_t at, T value) {
  for (size_t i = 0; i < sizeof(T); ++i) slot[at + i] = static_cast<std::byte>(value >> (8 * i));
}

void refresh_checksum(Slot& slot) {
  write_le<uint32_t>(slot, fmt::offset::checksum, fmt::slot_checksum(slot));
}

TEST(MetadataFormat, SizesOfBitmapAndMetadata) {
  EXPECT_EQ(fmt::region_count(uint64_t{1} << 30, 65536), 16384u);
  EXPECT_EQ(fmt::region_count((uint64_t{1} << 30) + 1, 65536), 16385u);
  EXPECT_EQ(fmt::bitmap_length(1), 4096u);
  EXPECT_EQ(fmt::bitmap_length(4096 * 8), 4096u);
  EXPECT_EQ(fmt::bitmap_length(4096 * 8 + 1), 8192u);
  EXPECT_EQ(fmt::required_size(uint64_t{1} << 24), 8192u + (uint64_t{1} << 21));  // 1 TiB/64 KiB
}

TEST(MetadataFormat, FieldsSitAtTheDocumentedOffsetsLittleEndian) {
  Slot slot = fmt::encode(sample(1, 0x0102030405060708));
  EXPECT_EQ(std::memcmp(slot.data(), "HYDRMETA", 8), 0);
  EXPECT_EQ(read_le(slot, 8, 4), 1u);  // version
  EXPECT_EQ(read_le(slot, 16, 8), 0x0102030405060708u);
  EXPECT_EQ(std::to_integer<int>(slot[16]), 0x08);  // little-endian: low byte first
  EXPECT_EQ(read_le(slot, 24, 4), 1u);              // slot index
  EXPECT_EQ(read_le(slot, 28, 4), 1u);              // flags
  EXPECT_EQ(read_le(slot, 32, 4), 65536u);
  EXPECT_EQ(read_le(slot, 36, 4), sample().source_identity.size());
  EXPECT_EQ(read_le(slot, 40, 8), (uint64_t{1} << 30) + 100);
  EXPECT_EQ(read_le(slot, 48, 8), uint64_t{1} << 31);
  EXPECT_EQ(read_le(slot, 56, 8), 16385u);
  EXPECT_EQ(read_le(slot, 64, 8), 42u);
  EXPECT_EQ(read_le(slot, 72, 8), 1700000000123u);
  EXPECT_EQ(std::to_integer<int>(slot[80]), 0xa0);
  EXPECT_EQ(std::to_integer<int>(slot[95]), 0xaf);
  EXPECT_EQ(read_le(slot, 96, 8), 8192u);
  EXPECT_EQ(read_le(slot, 104, 8), 4096u);
  EXPECT_EQ(std::memcmp(slot.data() + 112, sample().source_identity.data(),
                        sample().source_identity.size()),
            0);
  for (size_t i = 112 + sample().source_identity.size(); i < fmt::kSlotSize; ++i)
    ASSERT_EQ(std::to_integer<int>(slot[i]), 0) << "byte " << i << " should be zero padding";
}

TEST(MetadataFormat, ChecksumIsZlibCrc32OfTheSlotWithoutTheChecksumField) {
  Slot slot = fmt::encode(sample());
  Slot without = slot;
  // Recompute independently: crc32 over bytes [0,12) then [16,4096).
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(without.data()), 12);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(without.data() + 16), 4096 - 16);
  EXPECT_EQ(read_le(slot, 12, 4), static_cast<uint32_t>(crc));
}

TEST(MetadataFormat, EncodeDecodeRoundTrip) {
  fmt::DecodedSlot decoded = fmt::decode(fmt::encode(sample(1)), 1);
  ASSERT_EQ(decoded.status, fmt::SlotStatus::valid) << decoded.problem;
  const fmt::Superblock& sb = decoded.superblock;
  fmt::Superblock want = sample(1);
  EXPECT_EQ(sb.generation, want.generation);
  EXPECT_EQ(sb.slot_index, 1u);
  EXPECT_EQ(sb.flags, want.flags);
  EXPECT_EQ(sb.region_size, want.region_size);
  EXPECT_EQ(sb.source_size, want.source_size);
  EXPECT_EQ(sb.destination_size, want.destination_size);
  EXPECT_EQ(sb.region_count, want.region_count);
  EXPECT_EQ(sb.committed_regions, want.committed_regions);
  EXPECT_EQ(sb.commit_time_unix_ms, want.commit_time_unix_ms);
  EXPECT_EQ(sb.clone_uuid, want.clone_uuid);
  EXPECT_EQ(sb.bitmap_length, want.bitmap_length);
  EXPECT_EQ(sb.source_identity, want.source_identity);
}

TEST(MetadataFormat, AnyFlippedBitIsABadChecksum) {
  const Slot good = fmt::encode(sample());
  for (size_t byte : {16u, 40u, 100u, 200u, 4095u}) {
    Slot slot = good;
    slot[byte] ^= std::byte{0x10};
    fmt::DecodedSlot decoded = fmt::decode(slot, 0);
    EXPECT_EQ(decoded.status, fmt::SlotStatus::bad_checksum) << "byte " << byte;
    EXPECT_TRUE(contains(decoded.problem, "bad checksum")) << decoded.problem;
  }
}

TEST(MetadataFormat, BadMagicNamesWhatWasFound) {
  Slot slot{};
  fmt::DecodedSlot decoded = fmt::decode(slot, 0);
  EXPECT_EQ(decoded.status, fmt::SlotStatus::bad_magic);
  EXPECT_TRUE(contains(decoded.problem, "bad magic (found 00 00 00 00 00 00 00 00"))
      << decoded.problem;
}

TEST(MetadataFormat, AnotherVersionIsUnsupportedWhateverItsChecksum) {
  Slot slot = fmt::encode(sample());
  write_le<uint32_t>(slot, fmt::offset::version, 2);
  refresh_checksum(slot);
  fmt::DecodedSlot decoded = fmt::decode(slot, 0);
  EXPECT_EQ(decoded.status, fmt::SlotStatus::unsupported_version);
  EXPECT_TRUE(contains(decoded.problem, "unsupported format version 2")) << decoded.problem;
  write_le<uint32_t>(slot, fmt::offset::version, 3);  // checksum now stale
  EXPECT_EQ(fmt::decode(slot, 0).status, fmt::SlotStatus::unsupported_version);
}

TEST(MetadataFormat, ChecksumValidButContradictoryFieldsAreInconsistent) {
  struct Case {
    const char* what;
    void (*mutate)(fmt::Superblock&);
  };
  const Case cases[] = {
      {"slot 0", [](fmt::Superblock& sb) { sb.slot_index = 0; }},
      {"region size 5000", [](fmt::Superblock& sb) { sb.region_size = 5000; }},
      {"region count 16386", [](fmt::Superblock& sb) { sb.region_count = 16386; }},
      {"destination size 5", [](fmt::Superblock& sb) { sb.destination_size = 5; }},
      {"committed region count 99999", [](fmt::Superblock& sb) { sb.committed_regions = 99999; }},
      {"bitmap offset 0", [](fmt::Superblock& sb) { sb.bitmap_offset = 0; }},
      {"bitmap length 8192", [](fmt::Superblock& sb) { sb.bitmap_length = 8192; }},
      {"unknown state flags 0x00000004", [](fmt::Superblock& sb) { sb.flags = 4; }},
  };
  for (const Case& c : cases) {
    fmt::Superblock sb = sample(1);
    c.mutate(sb);
    fmt::DecodedSlot decoded = fmt::decode(fmt::encode(sb), 1);
    EXPECT_EQ(decoded.status, fmt::SlotStatus::inconsistent) << c.what;
    EXPECT_TRUE(contains(decoded.problem, c.what)) << decoded.problem;
  }
}

TEST(MetadataFormat, OverlongIdentityLengthIsInconsistent) {
  Slot slot = fmt::encode(sample());
  write_le<uint32_t>(slot, fmt::offset::identity_length, 5000);
  refresh_checksum(slot);
  fmt::DecodedSlot decoded = fmt::decode(slot, 0);
  EXPECT_EQ(decoded.status, fmt::SlotStatus::inconsistent);
  EXPECT_TRUE(contains(decoded.problem, "source identity length 5000")) << decoded.problem;
}

std::array<fmt::DecodedSlot, 2> slots(fmt::SlotStatus s0, uint64_t g0, fmt::SlotStatus s1,
                                      uint64_t g1) {
  std::array<fmt::DecodedSlot, 2> out;
  out[0].status = s0;
  out[0].superblock.generation = g0;
  out[0].problem = std::string(fmt::to_string(s0)) + " zero";
  out[1].status = s1;
  out[1].superblock.generation = g1;
  out[1].problem = std::string(fmt::to_string(s1)) + " one";
  return out;
}

TEST(MetadataFormat, ChooseSlotPicksTheNewestValidAndFallsBackPastATornOne) {
  using S = fmt::SlotStatus;
  EXPECT_EQ(fmt::choose_slot(slots(S::valid, 4, S::valid, 5)).slot, 1);
  EXPECT_EQ(fmt::choose_slot(slots(S::valid, 6, S::valid, 5)).slot, 0);
  EXPECT_EQ(fmt::choose_slot(slots(S::valid, 4, S::bad_checksum, 5)).slot, 0);
  EXPECT_EQ(fmt::choose_slot(slots(S::bad_magic, 0, S::valid, 5)).slot, 1);
}

TEST(MetadataFormat, ChooseSlotRefusals) {
  using S = fmt::SlotStatus;
  auto refusal = [](const std::array<fmt::DecodedSlot, 2>& s) {
    fmt::SlotChoice choice = fmt::choose_slot(s);
    EXPECT_FALSE(choice.slot.has_value());
    return choice.refusal;
  };
  EXPECT_TRUE(contains(refusal(slots(S::bad_magic, 0, S::bad_magic, 0)),
                       "not hydrate metadata: bad magic in both superblock slots"));
  EXPECT_TRUE(contains(refusal(slots(S::bad_checksum, 0, S::bad_checksum, 0)),
                       "bad checksum in both superblock slots"));
  EXPECT_TRUE(contains(refusal(slots(S::bad_checksum, 0, S::bad_magic, 0)),
                       "no valid superblock (slot 0: bad checksum zero; slot 1: bad magic one)"));
  // Another version or a self-contradicting slot is never skipped over.
  EXPECT_TRUE(contains(refusal(slots(S::valid, 9, S::unsupported_version, 0)),
                       "superblock slot 1 has unsupported version one"));
  EXPECT_TRUE(contains(refusal(slots(S::inconsistent, 0, S::valid, 3)),
                       "superblock slot 0 is inconsistent zero"));
  EXPECT_TRUE(contains(refusal(slots(S::valid, 3, S::valid, 3)),
                       "both superblock slots hold generation 3"));
}

TEST(MetadataFormat, RandomUuidsAreVersion4AndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 50; ++i) {
    fmt::Uuid uuid = fmt::random_uuid();
    std::string text = fmt::format_uuid(uuid);
    ASSERT_EQ(text.size(), 36u);
    EXPECT_EQ(text[8], '-');
    EXPECT_EQ(text[14], '4');
    EXPECT_NE(std::string("89ab").find(text[19]), std::string::npos) << text;
    seen.insert(text);
  }
  EXPECT_EQ(seen.size(), 50u);
}

TEST(MetadataFormat, WordsAreLittleEndian) {
  std::byte bytes[8];
  fmt::store_word(bytes, 0x0807060504030201);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(std::to_integer<int>(bytes[i]), i + 1);
  EXPECT_EQ(fmt::load_word(bytes), 0x0807060504030201u);
}

}  // namespace
}  // namespace hydrate
