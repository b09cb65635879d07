#include "nbd-server/export_terms.h"

#include <algorithm>
#include <bit>
#include <cerrno>

#include "nbd-server/protocol.h"

namespace hydrate::nbd {

using namespace proto;

uint16_t transmission_flags(const ExportInfo& info, bool structured_replies) {
  uint16_t flags = kFlagHasFlags;
  if (info.read_only) flags |= kFlagReadOnly;
  if (info.can_flush) flags |= kFlagSendFlush;
  if (info.can_fua) flags |= kFlagSendFua;
  if (info.rotational) flags |= kFlagRotational;
  if (!info.read_only && info.can_trim) flags |= kFlagSendTrim;
  if (!info.read_only && info.can_zero) {
    flags |= kFlagSendWriteZeroes;
    if (info.can_fast_zero) flags |= kFlagSendFastZero;
  }
  // DF is only meaningful (and only allowed) with structured replies; reads are never
  // fragmented when it is set, so it is always supported.
  if (structured_replies) flags |= kFlagSendDf;
  if (info.can_multi_conn) flags |= kFlagCanMultiConn;
  if (info.can_cache) flags |= kFlagSendCache;
  return flags;
}

BlockSizes advertised_block_sizes(const ExportInfo& info) {
  BlockSizes b;
  b.minimum =
      std::clamp<uint32_t>(std::bit_floor(std::max<uint32_t>(info.min_block, 1)), 1, 64 * 1024);
  b.preferred = std::bit_floor(std::max({info.preferred_block, b.minimum, 512u}));
  b.preferred = std::min<uint32_t>(b.preferred, kMaxPayload);
  b.maximum = std::clamp<uint32_t>(info.max_block, b.preferred, kMaxPayload);
  // A maximum that is not a multiple of the minimum would invite requests that are both
  // "largest allowed" and misaligned.
  b.maximum -= b.maximum % b.minimum;
  return b;
}

uint32_t nbd_error_from_errno(int error, bool fast_zero_request) {
  switch (error) {
    case 0:
      return 0;
    case EPERM:
    case EROFS:
    case EACCES:
      return kEperm;
    case EIO:
      return kEio;
    case ENOMEM:
      return kEnomem;
    case EINVAL:
      return kEinval;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
      return kEnospc;
    case EOVERFLOW:
      return kEoverflow;
    case ESHUTDOWN:
      return kEshutdown;
    case ENOTSUP:
#if EOPNOTSUPP != ENOTSUP
    case EOPNOTSUPP:
#endif
      return fast_zero_request ? kEnotsup : kEio;
  }
  return kEio;
}

}  // namespace hydrate::nbd
