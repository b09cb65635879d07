#include "engine/region_size.h"

#include <bit>

namespace hydrate {

bool valid_region_size(uint64_t size) {
  return size >= kMinRegionSize && size <= kMaxRegionSize && std::has_single_bit(size);
}

std::string region_size_problem(uint64_t size) {
  if (valid_region_size(size)) return {};
  return "is not a power of two from 4KiB to 1GiB";
}

}  // namespace hydrate
