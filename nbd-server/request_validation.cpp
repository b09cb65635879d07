#include "nbd-server/request_validation.h"

#include <cstdio>

#include "engine/export.h"

namespace hydrate::nbd {
namespace {

using namespace proto;

RequestCheck fail(uint32_t error, std::string reason) {
  return {error, std::move(reason)};
}

std::string hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%x", v);
  return buf;
}

uint16_t allowed_flags(uint16_t type, uint16_t tflags) {
  uint16_t allowed = (tflags & kFlagSendFua) ? kCmdFlagFua : 0;
  switch (type) {
    case kCmdRead:
      if (tflags & kFlagSendDf) allowed |= kCmdFlagDf;
      break;
    case kCmdWriteZeroes:
      allowed |= kCmdFlagNoHole;
      if (tflags & kFlagSendFastZero) allowed |= kCmdFlagFastZero;
      break;
    case kCmdBlockStatus:
      allowed |= kCmdFlagReqOne;
      break;
  }
  return allowed;
}

}  // namespace

RequestCheck check_request(const RequestHeader& r, const RequestLimits& limits) {
  const uint16_t tflags = limits.transmission_flags;
  switch (r.type) {
    case kCmdRead:
    case kCmdWrite:
    case kCmdFlush:
    case kCmdTrim:
    case kCmdCache:
    case kCmdWriteZeroes:
    case kCmdBlockStatus:
      break;
    case kCmdDisc:
      return {};
    default:
      return fail(kEinval, "unknown command " + std::to_string(r.type));
  }
  const char* name = command_name(r.type);

  // Before anything else: the reader discards a refused payload instead of buffering it, and
  // a payload this large is answered EOVERFLOW whatever else is wrong with the request.
  if (r.type == kCmdWrite && r.length > kMaxPayload)
    return fail(kEoverflow, "WRITE payload of " + std::to_string(r.length) +
                                " bytes exceeds the 32 MiB this server accepts");

  if (uint16_t bad = r.flags & ~allowed_flags(r.type, tflags))
    return fail(kEinval, std::string("flags ") + hex(bad) + " are not valid for " + name +
                             " on this export");

  const bool writes = r.type == kCmdWrite || r.type == kCmdTrim || r.type == kCmdWriteZeroes;
  if (writes && (tflags & kFlagReadOnly))
    return fail(kEperm, std::string(name) + " on a read-only export");
  switch (r.type) {
    case kCmdFlush:
      if (!(tflags & kFlagSendFlush)) return fail(kEinval, "FLUSH is not supported by this export");
      if (r.offset != 0 || r.length != 0)
        return fail(kEinval, "FLUSH must have offset and length 0");
      return {};
    case kCmdTrim:
      if (!(tflags & kFlagSendTrim)) return fail(kEinval, "TRIM is not supported by this export");
      break;
    case kCmdWriteZeroes:
      if (!(tflags & kFlagSendWriteZeroes))
        return fail(kEinval, "WRITE_ZEROES is not supported by this export");
      break;
    case kCmdCache:
      if (!(tflags & kFlagSendCache)) return fail(kEinval, "CACHE is not supported by this export");
      break;
    case kCmdBlockStatus:
      if (!limits.structured_replies)
        return fail(kEinval, "BLOCK_STATUS needs structured replies, which were not negotiated");
      if (!limits.meta_contexts_selected)
        return fail(kEinval, "BLOCK_STATUS needs a metadata context, none was selected");
      if (r.length == 0) return fail(kEinval, "BLOCK_STATUS with length 0");
      break;
  }

  const uint64_t end = r.offset + r.length;
  if (end < r.offset || r.offset > limits.size || end > limits.size) {
    const bool grows = r.type == kCmdWrite || r.type == kCmdWriteZeroes;
    return fail(grows ? kEnospc : kEinval,
                std::string(name) + " at offset " + std::to_string(r.offset) + " length " +
                    std::to_string(r.length) + " goes past the end of the export (size " +
                    std::to_string(limits.size) + ")");
  }
  if (limits.min_block > 1 && (r.offset % limits.min_block || r.length % limits.min_block))
    return fail(kEinval, std::string(name) + " at offset " + std::to_string(r.offset) + " length " +
                             std::to_string(r.length) +
                             " is not aligned to the minimum block size " +
                             std::to_string(limits.min_block));
  if ((r.type == kCmdRead || r.type == kCmdWrite) && r.length > limits.max_payload)
    return fail(kEinval, std::string(name) + " of " + std::to_string(r.length) +
                             " bytes exceeds the maximum payload of " +
                             std::to_string(limits.max_payload) + " bytes");
  return {};
}

}  // namespace hydrate::nbd
