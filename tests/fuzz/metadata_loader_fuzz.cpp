// libFuzzer target: the metadata loader (DESIGN.md §9). Whatever a metadata device holds —
// torn, truncated, hand-edited or hostile — MetadataStore::inspect (what `hydrate meta check`
// runs) and MetadataStore::open (what a restart runs) either load it consistently or refuse with
// a reason; they never crash, read outside the device or allocate for sizes the device cannot
// back.
//
// The first input byte picks how the device is built, so the fuzzer does not have to discover
// a crc32 by chance:
//   raw       the rest of the input is the device, byte for byte;
//   patched   a freshly created clone's metadata with (offset, value) byte patches applied and
//             the device cut or grown to a chosen length (torn and corrupt slots, bad bitmaps);
//   resealed  that metadata with a superblock whose fields come from the input, re-encoded with
//             a correct checksum into a chosen slot (semantically wrong but checksum-valid
//             superblocks: the checks behind the checksum).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "engine/log.h"
#include "engine/metadata_format.h"
#include "engine/metadata_store.h"
#include "engine/region_map.h"
#include "engine/run_to_completion.h"
#include "tests/support/memory_block_device.h"

using namespace hydrate;
namespace fmt = hydrate::metadata_format;

namespace {

// The clone whose metadata the patched and resealed modes start from: an odd size (a clipped
// last region) and more than one bitmap block's worth of regions.
const CloneGeometry kGeometry{(40u << 20) + 12345, (40u << 20) + 12345, 4096,
                              "nbd+unix:///disk?socket=/run/backup.sock"};

// Reads input bytes front to back; past the end everything is zero.
class InputReader {
 public:
  InputReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return at_ >= size_; }
  uint8_t u8() { return at_ < size_ ? data_[at_++] : 0; }
  uint64_t uint(int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(u8()) << (8 * i);
    return v;
  }
  std::vector<std::byte> rest() {
    std::vector<std::byte> out(reinterpret_cast<const std::byte*>(data_ + std::min(at_, size_)),
                               reinterpret_cast<const std::byte*>(data_ + size_));
    at_ = size_;
    return out;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t at_ = 0;
};

// A valid, freshly created metadata image of kGeometry, made once.
const std::vector<std::byte>& base_image() {
  static const std::vector<std::byte> image = [] {
    test::MemoryBlockDevice device(MetadataStore::required_size(kGeometry), "base");
    std::unique_ptr<MetadataStore> store;
    if (!run_to_completion(MetadataStore::create(device, kGeometry, store)).ok()) __builtin_trap();
    return device.contents();
  }();
  return image;
}

// Byte patches until the input ends: u24 offset (wrapped to the image), u8 value.
void apply_patches(InputReader& in, std::vector<std::byte>& image) {
  while (!in.empty() && !image.empty()) {
    const uint64_t at = in.uint(3) % image.size();
    image[at] = static_cast<std::byte>(in.u8());
  }
}

// Overwrites chosen superblock fields with input values, keeping the rest plausible.
void reseal(InputReader& in, std::vector<std::byte>& image) {
  const uint32_t slot = in.u8() & 1;
  const uint8_t which = in.u8();
  fmt::DecodedSlot decoded = fmt::decode(std::span<const std::byte, fmt::kSlotSize>(
                                             image.data() + slot * fmt::kSlotSize, fmt::kSlotSize),
                                         slot);
  fmt::Superblock sb = decoded.superblock;
  auto value = [&](int bytes) { return in.uint(bytes); };
  if (which & 0x01) sb.generation = value(8);
  if (which & 0x02) sb.flags = static_cast<uint32_t>(value(4));
  if (which & 0x04) sb.region_size = static_cast<uint32_t>(1u << (in.u8() % 32));
  if (which & 0x08) sb.source_size = value(in.u8() & 1 ? 8 : 4);
  if (which & 0x10) sb.destination_size = value(in.u8() & 1 ? 8 : 4);
  if (which & 0x20) sb.region_count = value(in.u8() & 1 ? 8 : 3);
  if (which & 0x40) {
    sb.committed_regions = value(3);
    sb.bitmap_length = value(in.u8() & 1 ? 8 : 3);
    sb.bitmap_offset = value(in.u8() & 1 ? 8 : 2);
  }
  if (which & 0x80) {
    const size_t length = in.u8() * 5;
    sb.source_identity.clear();
    for (size_t i = 0; i < length && i < fmt::kMaxSourceIdentity; ++i)
      sb.source_identity.push_back(static_cast<char>(in.u8()));
  }
  if (in.u8() & 1) sb.slot_index = in.u8();
  const auto sealed = fmt::encode(sb);
  std::memcpy(image.data() + slot * fmt::kSlotSize, sealed.data(), sealed.size());
}

bool same_geometry(const CloneGeometry& a, const CloneGeometry& b) {
  return a.source_size == b.source_size && a.destination_size == b.destination_size &&
         a.region_size == b.region_size && a.source_identity == b.source_identity;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bool quiet = [] {
    log::set_level(log::Level::error);
    return true;
  }();
  (void)quiet;
  InputReader in(data, size);
  std::vector<std::byte> image;
  switch (in.u8() % 3) {
    case 0:
      image = in.rest();
      break;
    case 1: {
      image = base_image();
      // Cut or grow: 0 keeps the length, otherwise a length up to twice the image.
      const uint64_t length = in.uint(3);
      if (length != 0) image.resize(length % (2 * image.size()));
      apply_patches(in, image);
      break;
    }
    default:
      image = base_image();
      reseal(in, image);
      apply_patches(in, image);
      break;
  }

  test::MemoryBlockDevice device(image.size(), "fuzz");
  device.set_contents(0, image);

  CloneGeometry recorded;
  MetadataSummary summary;
  std::unique_ptr<RegionMap> inspected;
  IoResult r = run_to_completion(MetadataStore::inspect(device, recorded, summary, inspected));
  if (r.ok()) {
    // What loaded must describe itself consistently and fit the device it came from.
    if (!inspected) __builtin_trap();
    if (inspected->device_size() != recorded.source_size) __builtin_trap();
    if (inspected->region_size() != recorded.region_size) __builtin_trap();
    if (MetadataStore::required_size(recorded) > device.size()) __builtin_trap();
    if (summary.active_slot != 0 && summary.active_slot != 1) __builtin_trap();
  } else if (r.message.empty()) {
    __builtin_trap();  // a refusal must say why
  }

  // A restart expecting the base clone: loads only metadata that records exactly it.
  std::unique_ptr<RegionMap> map;
  std::unique_ptr<MetadataStore> store;
  IoResult opened = run_to_completion(
      MetadataStore::open(device, MetadataExpectations::exactly(kGeometry), map, store));
  if (opened.ok()) {
    if (!store || !same_geometry(store->geometry(), kGeometry)) __builtin_trap();
    if (!r.ok()) __builtin_trap();  // open accepted what inspect refused
  } else if (opened.message.empty()) {
    __builtin_trap();
  }
  return 0;
}
