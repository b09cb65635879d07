#pragma once

#include <cstdint>
#include <string>

#include "nbd-server/request_header.h"

namespace hydrate::nbd {

// What a request is checked against: the export as this connection negotiated it.
struct RequestLimits {
  uint64_t size = 0;
  uint16_t transmission_flags = 0;
  uint32_t min_block = 1;
  uint32_t max_payload = 0;  // largest READ/WRITE served
  bool structured_replies = false;
  bool meta_contexts_selected = false;
};

// The spec's answer to a request the export must not see, or error == 0 when it may proceed.
struct RequestCheck {
  uint32_t error = 0;  // an NBD error value (proto::kE*)
  std::string reason;

  bool ok() const { return error == 0; }
};

// Validates type, flags, support, alignment, bounds and size of a request (nbd.md §1.14):
// unknown commands and flags → EINVAL; a WRITE payload above 32 MiB (kMaxPayload) → EOVERFLOW,
// ahead of every other check; writes on a read-only export → EPERM; reads, trims, cache and
// block status outside the export → EINVAL, writes and zeroes → ENOSPC; READ/WRITE larger
// than `max_payload` → EINVAL; BLOCK_STATUS without structured replies or a selected context
// → EINVAL. NBD_CMD_DISC is not checked (it has no reply). This is the only place a request
// is judged; a refused WRITE's payload must still be read past by the caller.
RequestCheck check_request(const RequestHeader& request, const RequestLimits& limits);

}  // namespace hydrate::nbd
