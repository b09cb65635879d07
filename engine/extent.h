#pragma once

#include <cstdint>
#include <vector>

namespace hydrate {

// One run of bytes with the same status, as NBD_CMD_BLOCK_STATUS describes it. The meaning of
// `flags` depends on the metadata context that produced it.
struct Extent {
  uint64_t length = 0;
  uint32_t flags = 0;

  bool operator==(const Extent&) const = default;
};

using ExtentList = std::vector<Extent>;

// Flags of the `base:allocation` context (NBD_STATE_HOLE, NBD_STATE_ZERO).
inline constexpr uint32_t kAllocationHole = 1u << 0;
inline constexpr uint32_t kAllocationZero = 1u << 1;

// Flags of the `hydrate:state` context.
inline constexpr uint32_t kStateHydrated = 1u << 0;

// A byte range [offset, offset + length).
struct ByteRange {
  uint64_t offset = 0;
  uint64_t length = 0;

  uint64_t end() const { return offset + length; }
  bool operator==(const ByteRange&) const = default;
};

}  // namespace hydrate
