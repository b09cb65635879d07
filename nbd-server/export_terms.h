#pragma once

#include <cstdint>

#include "engine/export.h"

// How an ExportInfo is presented on the wire: transmission flags and NBD_INFO_BLOCK_SIZE.
namespace hydrate::nbd {

uint16_t transmission_flags(const ExportInfo& info, bool structured_replies);

struct BlockSizes {
  uint32_t minimum = 1;
  uint32_t preferred = 4096;
  uint32_t maximum = kMaxPayload;
};

// The export's block sizes made legal for the protocol: minimum a power of two ≤ 64 KiB,
// preferred a power of two ≥ max(minimum, 512), maximum between preferred and 32 MiB (the
// largest payload this server buffers).
BlockSizes advertised_block_sizes(const ExportInfo& info);

// Maps an engine errno (IoResult::error) to the NBD error sent to the client: the values the
// protocol defines pass through, the quota/size family becomes ENOSPC, ENOTSUP only survives
// for FAST_ZERO (where the spec gives it a meaning), everything else is EIO.
uint32_t nbd_error_from_errno(int error, bool fast_zero_request);

}  // namespace hydrate::nbd
