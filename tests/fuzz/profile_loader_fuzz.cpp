// libFuzzer target: the boot profile loader (docs/profile-format.md). A profile is untrusted
// input — truncated, corrupt, hand-edited or hostile — so decode_profile either returns a
// profile whose every run lies inside the source, with no region twice, or refuses with a
// reason; it never crashes, reads out of bounds or allocates for sizes the input cannot back.
//
// The first input byte picks the mode, so the fuzzer does not have to find a crc32 by chance:
//   0  raw: the rest of the input is the file;
//   1  resealed: the rest with its checksum field recomputed, to reach the checks behind it.
// An accepted profile must round-trip, and feeds the prefetch order and merge (bounded maps).
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "engine/profile/access_profile_format.h"
#include "engine/profile/prefetch_order.h"
#include "engine/region_map.h"

using namespace hydrate;

namespace {

void reseal(std::vector<std::byte>& b) {
  if (b.size() < profile_format::kHeaderSize) return;
  auto p = reinterpret_cast<const Bytef*>(b.data());
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, p, 12);
  crc = crc32(crc, p + 16, static_cast<uInt>(b.size() - 16));
  for (int i = 0; i < 4; ++i) b[12 + i] = static_cast<std::byte>(crc >> (8 * i));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::vector<std::byte> bytes(reinterpret_cast<const std::byte*>(data + 1),
                               reinterpret_cast<const std::byte*>(data + size));
  if (data[0] & 1) reseal(bytes);

  AccessProfile p;
  if (!decode_profile(bytes, p).empty()) return 0;

  const uint64_t regions = p.region_count_of_source();
  uint64_t total = 0;
  for (const ProfileRun& r : p.runs) {
    if (r.count == 0 || r.first >= regions || r.count > regions - r.first) __builtin_trap();
    total += r.count;
  }
  if (total > regions) __builtin_trap();

  AccessProfile again;
  if (!decode_profile(encode_profile(p), again).empty() || again.runs != p.runs ||
      again.source_size != p.source_size || again.region_size != p.region_size ||
      again.source_identity != p.source_identity)
    __builtin_trap();

  // The prefetch walk over a real map, where the map stays small enough to allocate.
  if (regions <= (1u << 20)) {
    RegionMap map(p.source_size, p.region_size);
    PrefetchOrder order(p.runs);
    uint64_t handed_out = 0;
    while (auto run = order.next(map, 64)) {
      if (run->count == 0 || run->end() > regions) __builtin_trap();
      handed_out += run->count;
      map.set(run->first, run->count);
    }
    if (handed_out != total || order.remaining(map) != 0) __builtin_trap();
    AccessProfile merged;
    if (!merge_profiles({p, p}, merged).empty() || merged.regions() != total) __builtin_trap();
  }
  return 0;
}
