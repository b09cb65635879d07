#pragma once

#include <cstddef>
#include <cstdint>

#include "nbd-server/protocol.h"
#include "nbd-server/wire.h"

namespace hydrate::nbd {

// One compact (28-byte) transmission request header.
struct RequestHeader {
  uint16_t flags = 0;
  uint16_t type = 0;
  uint64_t cookie = 0;
  uint64_t offset = 0;
  uint32_t length = 0;
};

// Decodes kRequestHeaderSize bytes; false when the magic is not NBD_REQUEST_MAGIC (the stream
// is out of sync and the connection must be dropped).
inline bool decode_request_header(const std::byte* p, RequestHeader& out) {
  if (wire::load_u32(p) != proto::kRequestMagic) return false;
  out.flags = wire::load_u16(p + 4);
  out.type = wire::load_u16(p + 6);
  out.cookie = wire::load_u64(p + 8);
  out.offset = wire::load_u64(p + 16);
  out.length = wire::load_u32(p + 24);
  return true;
}

inline void encode_request_header(std::byte* p, const RequestHeader& h) {
  wire::store_u32(p, proto::kRequestMagic);
  wire::store_u16(p + 4, h.flags);
  wire::store_u16(p + 6, h.type);
  wire::store_u64(p + 8, h.cookie);
  wire::store_u64(p + 16, h.offset);
  wire::store_u32(p + 24, h.length);
}

}  // namespace hydrate::nbd
