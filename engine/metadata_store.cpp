#include "engine/metadata_store.h"

#include <bit>
#include <chrono>
#include <vector>

namespace hydrate {

namespace fmt = metadata_format;

static_assert((kMetaFlagComplete | kMetaFlagSourceDiscarded) == fmt::kKnownFlags,
              "metadata_format::kKnownFlags must list every kMetaFlag*");

namespace {

// Bitmap blocks coalesced into one write at most: bounds the buffer a huge commit needs.
constexpr uint64_t kMaxBlocksPerWrite = 256;  // 1 MiB
// Bitmap bytes read at once when loading.
constexpr uint64_t kLoadChunk = 1 << 20;

std::string n(uint64_t value) {
  return std::to_string(value);
}

uint64_t now_unix_ms() {
  using namespace std::chrono;
  return static_cast<uint64_t>(
      duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
}

IoResult refuse(const BlockDevice& device, const std::string& why) {
  return IoResult::failure(EINVAL, "metadata " + device.name() + ": " + why);
}

// Context for a failed device operation, keeping the device's own message.
IoResult failed(const BlockDevice& device, const std::string& step, const IoResult& cause) {
  return IoResult::failure(cause.error,
                           "metadata " + device.name() + ": " + step + " failed: " + cause.message);
}

}  // namespace

std::string MetadataStore::geometry_problem(const CloneGeometry& geometry) {
  const uint32_t rs = geometry.region_size;
  if (!valid_region_size(rs)) return "region size " + n(rs) + " " + region_size_problem(rs);
  if (geometry.source_size == 0) return "source size is 0";
  if (geometry.destination_size < geometry.source_size)
    return "destination size " + n(geometry.destination_size) + " is smaller than source size " +
           n(geometry.source_size);
  if (geometry.source_identity.empty()) return "source identity is empty";
  if (geometry.source_identity.size() > fmt::kMaxSourceIdentity)
    return "source identity is " + n(geometry.source_identity.size()) +
           " bytes, longer than the limit of " + n(fmt::kMaxSourceIdentity);
  const uint64_t regions = fmt::region_count(geometry.source_size, rs);
  if (regions > RegionMap::kMaxRegions)
    return "source size " + n(geometry.source_size) + " at region size " + n(rs) + " needs " +
           n(regions) + " regions, more than the limit of " + n(RegionMap::kMaxRegions) +
           "; choose a larger region size";
  return {};
}

namespace {

CloneGeometry recorded_geometry(const fmt::Superblock& sb) {
  return CloneGeometry{sb.source_size, sb.destination_size, sb.region_size, sb.source_identity};
}

// I7, the one comparison: the first field where the recorded geometry and the expected one
// differ, phrased for the operator; empty when they agree. Unset expectations always agree.
std::string geometry_mismatch(const CloneGeometry& recorded, const MetadataExpectations& expected) {
  if (expected.source_size && recorded.source_size != *expected.source_size)
    return "source size differs: metadata says " + n(recorded.source_size) + ", source has " +
           n(*expected.source_size);
  if (expected.destination_size && recorded.destination_size != *expected.destination_size)
    return "destination size differs: metadata says " + n(recorded.destination_size) +
           ", destination has " + n(*expected.destination_size);
  if (expected.region_size && recorded.region_size != *expected.region_size)
    return "region size differs: metadata says " + n(recorded.region_size) +
           ", configuration says " + n(*expected.region_size);
  if (expected.source_identity && recorded.source_identity != *expected.source_identity)
    return "source identity differs: metadata says \"" + recorded.source_identity +
           "\", source is \"" + *expected.source_identity + "\"";
  return {};
}

// Reads both slots and picks the one to use.
asio::awaitable<IoResult> read_active_superblock(BlockDevice& device, fmt::Superblock& out,
                                                 int& active_slot) {
  std::array<fmt::DecodedSlot, 2> slots;
  IoResult read = co_await MetadataStore::read_superblocks(device, slots);
  if (!read) co_return read;
  fmt::SlotChoice choice = fmt::choose_slot(slots);
  if (!choice.slot) co_return refuse(device, choice.refusal);
  active_slot = *choice.slot;
  out = slots[static_cast<size_t>(active_slot)].superblock;
  const uint64_t needed = fmt::required_size(out.region_count);
  if (device.size() < needed)
    co_return refuse(device, "truncated: the device is " + n(device.size()) +
                                 " bytes, the recorded geometry needs " + n(needed) +
                                 " (bitmap of " + n(out.bitmap_length) + " bytes at offset " +
                                 n(fmt::kBitmapOffset) + ")");
  co_return IoResult::success();
}

// Loads and checks the bitmap the superblock `sb` describes.
asio::awaitable<IoResult> read_bitmap(BlockDevice& device, const fmt::Superblock& sb,
                                      std::vector<uint64_t>& words) {
  const uint64_t word_count = (sb.region_count + 63) / 64;
  words.assign(word_count, 0);
  std::vector<std::byte> chunk;
  for (uint64_t done = 0; done < word_count * 8;) {
    const uint64_t length = std::min(kLoadChunk, word_count * 8 - done);
    chunk.resize(length);
    IoResult read = co_await device.read(fmt::kBitmapOffset + done, chunk);
    if (!read)
      co_return failed(device, "reading the bitmap at offset " + n(fmt::kBitmapOffset + done),
                       read);
    for (uint64_t i = 0; i < length; i += 8) words[(done + i) / 8] = fmt::load_word(&chunk[i]);
    done += length;
  }
  uint64_t hydrated = 0;
  for (uint64_t word : words) hydrated += static_cast<uint64_t>(std::popcount(word));
  if (sb.region_count % 64 != 0 &&
      (words.back() >> (sb.region_count % 64)) != 0)  // words is non-empty: region_count > 0
    co_return refuse(device, "corrupt bitmap: bits are set past the last region (" +
                                 n(sb.region_count - 1) + ")");
  if (hydrated < sb.committed_regions)
    co_return refuse(device, "corrupt bitmap: it holds " + n(hydrated) +
                                 " hydrated regions but superblock generation " + n(sb.generation) +
                                 " recorded " + n(sb.committed_regions) +
                                 " committed (bitmap writes were lost)");
  if ((sb.flags & kMetaFlagComplete) && hydrated != sb.region_count)
    co_return refuse(device, "corrupt bitmap: the superblock says complete but the bitmap holds " +
                                 n(hydrated) + " of " + n(sb.region_count) + " regions");
  co_return IoResult::success();
}

}  // namespace

MetadataStore::MetadataStore(BlockDevice& device, CloneGeometry geometry,
                             metadata_format::Superblock active, int active_slot)
    : device_(device), geometry_(std::move(geometry)), active_(std::move(active)) {
  summary_.generation = active_.generation;
  summary_.flags = active_.flags;
  summary_.committed_regions = active_.committed_regions;
  summary_.commit_time_unix_ms = active_.commit_time_unix_ms;
  summary_.active_slot = active_slot;
}

MetadataStore::~MetadataStore() = default;

uint64_t MetadataStore::required_size(const CloneGeometry& geometry) {
  return fmt::required_size(fmt::region_count(geometry.source_size, geometry.region_size));
}

asio::awaitable<IoResult> MetadataStore::read_superblocks(
    BlockDevice& device, std::array<metadata_format::DecodedSlot, 2>& slots) {
  const uint64_t header = fmt::kSlotCount * fmt::kSlotSize;
  if (device.size() < header)
    co_return refuse(device, "truncated: the device is " + n(device.size()) +
                                 " bytes, smaller than the two superblock slots (" + n(header) +
                                 " bytes)");
  std::vector<std::byte> bytes(header);
  IoResult read = co_await device.read(0, bytes);
  if (!read) co_return failed(device, "reading the superblock slots at offset 0", read);
  for (uint32_t i = 0; i < fmt::kSlotCount; ++i)
    slots[i] = fmt::decode(std::span<const std::byte, fmt::kSlotSize>(
                               bytes.data() + i * fmt::kSlotSize, fmt::kSlotSize),
                           i);
  co_return IoResult::success();
}

asio::awaitable<IoResult> MetadataStore::create(BlockDevice& device, const CloneGeometry& geometry,
                                                std::unique_ptr<MetadataStore>& out) {
  if (std::string why = geometry_problem(geometry); !why.empty())
    co_return refuse(device, "cannot create: " + why);
  const uint64_t needed = required_size(geometry);
  if (device.size() < needed)
    co_return IoResult::failure(
        ENOSPC, "metadata " + device.name() + ": the device is " + n(device.size()) +
                    " bytes, a clone of " + n(geometry.source_size) + " bytes at " +
                    n(geometry.region_size) + "-byte regions needs " + n(needed));

  // Zero everything first and make it durable: a crash before the slots land then leaves no
  // valid superblock at all (open refuses), never an older clone's superblock over a bitmap
  // that is half ours.
  IoResult zeroed = co_await device.write_zeroes(0, needed, false);
  if (!zeroed) co_return failed(device, "zeroing " + n(needed) + " bytes at offset 0", zeroed);
  IoResult flushed = co_await device.flush();
  if (!flushed) co_return failed(device, "flush after zeroing", flushed);

  fmt::Superblock sb;
  sb.flags = 0;
  sb.region_size = geometry.region_size;
  sb.source_size = geometry.source_size;
  sb.destination_size = geometry.destination_size;
  sb.region_count = fmt::region_count(geometry.source_size, geometry.region_size);
  sb.committed_regions = 0;
  sb.commit_time_unix_ms = now_unix_ms();
  sb.clone_uuid = fmt::random_uuid();
  sb.bitmap_offset = fmt::kBitmapOffset;
  sb.bitmap_length = fmt::bitmap_length(sb.region_count);
  sb.source_identity = geometry.source_identity;

  // Slot 0 holds generation 1 (active), slot 1 generation 0, so the first commit overwrites
  // slot 1 and the two slots alternate from then on.
  std::vector<std::byte> slots(fmt::kSlotCount * fmt::kSlotSize);
  for (uint32_t i = 0; i < fmt::kSlotCount; ++i) {
    fmt::Superblock slot = sb;
    slot.slot_index = i;
    slot.generation = i == 0 ? 1 : 0;
    auto image = fmt::encode(slot);
    std::copy(image.begin(), image.end(), slots.begin() + i * fmt::kSlotSize);
  }
  IoResult written = co_await device.write(0, slots, false);
  if (!written) co_return failed(device, "writing the superblock slots at offset 0", written);
  flushed = co_await device.flush();
  if (!flushed) co_return failed(device, "flush after writing the superblock slots", flushed);

  sb.slot_index = 0;
  sb.generation = 1;
  out.reset(new MetadataStore(device, geometry, sb, 0));
  co_return IoResult::success();
}

MetadataExpectations MetadataExpectations::exactly(const CloneGeometry& geometry) {
  return MetadataExpectations{geometry.source_identity, geometry.region_size, geometry.source_size,
                              geometry.destination_size};
}

asio::awaitable<IoResult> MetadataStore::load_map(BlockDevice& device, const fmt::Superblock& sb,
                                                  std::unique_ptr<RegionMap>& map) {
  std::vector<uint64_t> words;
  IoResult bitmap = co_await read_bitmap(device, sb, words);
  if (!bitmap) co_return bitmap;
  // The slot passed inconsistency(), so this geometry is one a RegionMap accepts.
  map = std::make_unique<RegionMap>(sb.source_size, sb.region_size);
  map->load(words);
  co_return IoResult::success();
}

asio::awaitable<IoResult> MetadataStore::open(BlockDevice& device,
                                              const MetadataExpectations& expected,
                                              std::unique_ptr<RegionMap>& map,
                                              std::unique_ptr<MetadataStore>& out) {
  fmt::Superblock sb;
  int active_slot = -1;
  IoResult chosen = co_await read_active_superblock(device, sb, active_slot);
  if (!chosen) co_return chosen;
  // Refuse a mismatch before reading the bitmap: a wrong source is the likelier mistake, and
  // its message is the one to give even when the bitmap is damaged too.
  CloneGeometry recorded = recorded_geometry(sb);
  if (std::string why = geometry_mismatch(recorded, expected); !why.empty())
    co_return refuse(device, why);
  std::unique_ptr<RegionMap> loaded;
  IoResult read = co_await load_map(device, sb, loaded);
  if (!read) co_return read;
  map = std::move(loaded);
  out.reset(new MetadataStore(device, std::move(recorded), std::move(sb), active_slot));
  co_return IoResult::success();
}

IoResult MetadataStore::check(const MetadataExpectations& expected) const {
  if (std::string why = geometry_mismatch(geometry_, expected); !why.empty())
    return refuse(device_, why);
  return IoResult::success();
}

asio::awaitable<IoResult> MetadataStore::inspect(BlockDevice& device, CloneGeometry& geometry,
                                                 MetadataSummary& summary,
                                                 std::unique_ptr<RegionMap>& map) {
  fmt::Superblock sb;
  int active_slot = -1;
  IoResult chosen = co_await read_active_superblock(device, sb, active_slot);
  if (!chosen) co_return chosen;
  std::unique_ptr<RegionMap> loaded;
  IoResult read = co_await load_map(device, sb, loaded);
  if (!read) co_return read;
  geometry = recorded_geometry(sb);
  summary = MetadataSummary{sb.generation, sb.flags, sb.committed_regions, sb.commit_time_unix_ms,
                            active_slot};
  map = std::move(loaded);
  co_return IoResult::success();
}

asio::awaitable<IoResult> MetadataStore::write_bitmap_blocks(
    const RegionMap& map, const RegionMap::Transaction& transaction) {
  const auto& words = transaction.words;
  const uint64_t word_count = map.word_count();
  std::vector<std::byte> buffer;
  size_t next = 0;  // first transaction word not yet written
  while (next < words.size()) {
    // One run of adjacent blocks that each hold at least one transaction word.
    const uint64_t first_block = words[next].first / fmt::kWordsPerBlock;
    uint64_t last_block = first_block;
    size_t end = next;
    while (end < words.size()) {
      const uint64_t block = words[end].first / fmt::kWordsPerBlock;
      if (block > last_block + 1 || block - first_block >= kMaxBlocksPerWrite) break;
      last_block = block;
      ++end;
    }
    const uint64_t first_word = first_block * fmt::kWordsPerBlock;
    const uint64_t block_words = (last_block - first_block + 1) * fmt::kWordsPerBlock;
    buffer.assign(block_words * 8, std::byte{0});
    size_t in_transaction = next;
    for (uint64_t i = 0; i < block_words && first_word + i < word_count; ++i) {
      const uint64_t word = first_word + i;
      uint64_t bits = map.committed_word(word);
      if (in_transaction < end && words[in_transaction].first == word)
        bits |= words[in_transaction++].second;
      fmt::store_word(&buffer[i * 8], bits);
    }
    const uint64_t at = fmt::kBitmapOffset + first_block * fmt::kBlockSize;
    IoResult written = co_await device_.write(at, buffer, false);
    if (!written)
      co_return failed(
          device_, "writing bitmap blocks at offset " + n(at) + " (" + n(buffer.size()) + " bytes)",
          written);
    next = end;
  }
  co_return IoResult::success();
}

asio::awaitable<IoResult> MetadataStore::commit(const RegionMap& map,
                                                const RegionMap::Transaction& transaction,
                                                uint32_t flags) {
  if (map.device_size() != active_.source_size || map.region_size() != active_.region_size)
    co_return refuse(device_, "commit of a region map of " + n(map.device_size()) + " bytes at " +
                                  n(map.region_size()) + "-byte regions to metadata of " +
                                  n(active_.source_size) + " bytes at " + n(active_.region_size));
  if ((flags & ~fmt::kKnownFlags) != 0)
    co_return refuse(device_, "commit with unknown state flags " + n(flags & ~fmt::kKnownFlags));
  for (size_t i = 0; i < transaction.words.size(); ++i) {
    const uint64_t word = transaction.words[i].first;
    if (word >= map.word_count() || (i > 0 && word <= transaction.words[i - 1].first))
      co_return refuse(device_, "commit of a malformed transaction: word " + n(word) +
                                    " at position " + n(i) + " is out of order or past word " +
                                    n(map.word_count() - 1));
  }
  const uint64_t tail_bits = map.region_count() % 64;
  if (!transaction.empty() && tail_bits != 0 &&
      transaction.words.back().first == map.word_count() - 1 &&
      (transaction.words.back().second >> tail_bits) != 0)
    co_return refuse(device_, "commit of a malformed transaction: bits past the last region (" +
                                  n(map.region_count() - 1) + ")");
  if (map.committed_regions() + transaction.regions > map.region_count())
    co_return refuse(device_, "commit of a malformed transaction: " + n(transaction.regions) +
                                  " new regions on top of " + n(map.committed_regions()) +
                                  " committed exceed the " + n(map.region_count()) + " regions");
  if (transaction.empty() && flags == active_.flags) co_return IoResult::success();

  IoResult written = co_await write_bitmap_blocks(map, transaction);
  if (!written) co_return written;
  if (!transaction.empty()) {
    IoResult flushed = co_await device_.flush();
    if (!flushed) co_return failed(device_, "flush after the bitmap writes", flushed);
  }

  // The older slot is rewritten; the active one stays intact until this one is durable.
  fmt::Superblock next = active_;
  next.slot_index = static_cast<uint32_t>(1 - summary_.active_slot);
  next.generation = active_.generation + 1;
  next.flags = flags;
  next.committed_regions = map.committed_regions() + transaction.regions;
  next.commit_time_unix_ms = now_unix_ms();
  const auto image = fmt::encode(next);
  const uint64_t at = next.slot_index * fmt::kSlotSize;
  IoResult slot_written = co_await device_.write(at, image, false);
  if (!slot_written)
    co_return failed(device_,
                     "writing superblock slot " + n(next.slot_index) + " (generation " +
                         n(next.generation) + ") at offset " + n(at),
                     slot_written);
  IoResult flushed = co_await device_.flush();
  if (!flushed)
    co_return failed(device_, "flush after writing superblock generation " + n(next.generation),
                     flushed);

  active_ = std::move(next);
  summary_.generation = active_.generation;
  summary_.flags = active_.flags;
  summary_.committed_regions = active_.committed_regions;
  summary_.commit_time_unix_ms = active_.commit_time_unix_ms;
  summary_.active_slot = static_cast<int>(active_.slot_index);
  co_return IoResult::success();
}

}  // namespace hydrate
