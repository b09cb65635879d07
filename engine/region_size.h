#pragma once

#include <cstdint>
#include <string>

namespace hydrate {

// The one rule for a clone's region size (DESIGN §1): a power of two from 4 KiB to 1 GiB.
// RegionMap, the metadata loader and writer, the clone opener, the YAML reader and the nbdkit
// plugin's keys all ask here, so they cannot disagree about which sizes exist.
inline constexpr uint32_t kMinRegionSize = 4096;
inline constexpr uint32_t kMaxRegionSize = uint32_t{1} << 30;

bool valid_region_size(uint64_t size);

// Empty when `size` is a valid region size; otherwise why not, as a phrase that follows the
// value ("is not a power of two from 4KiB to 1GiB"), for callers to prefix with their context.
std::string region_size_problem(uint64_t size);

}  // namespace hydrate
