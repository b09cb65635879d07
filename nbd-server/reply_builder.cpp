#include "nbd-server/reply_builder.h"

#include <algorithm>
#include <cstring>

#include "nbd-server/protocol.h"
#include "nbd-server/wire.h"

namespace hydrate::nbd {

using namespace proto;

size_t ReplyPieces::total_bytes() const {
  size_t n = 0;
  for (const Piece& p : pieces) n += p.length;
  return n;
}

std::vector<std::byte> ReplyPieces::flatten(std::span<const std::byte> payload) const {
  std::vector<std::byte> out;
  out.reserve(total_bytes());
  for (const Piece& p : pieces) {
    const std::byte* base = p.from_payload ? payload.data() : control.data();
    out.insert(out.end(), base + p.offset, base + p.offset + p.length);
  }
  return out;
}

std::byte* ReplyBuilder::append(size_t n) {
  size_t at = out_.control.size();
  out_.control.resize(at + n);
  auto& pieces = out_.pieces;
  if (!pieces.empty() && !pieces.back().from_payload &&
      pieces.back().offset + pieces.back().length == at)
    pieces.back().length += n;
  else
    pieces.push_back({false, at, n});
  return out_.control.data() + at;
}

void ReplyBuilder::simple(uint64_t cookie, uint32_t error) {
  std::byte* p = append(kSimpleReplyHeaderSize);
  wire::store_u32(p, kSimpleReplyMagic);
  wire::store_u32(p + 4, error);
  wire::store_u64(p + 8, cookie);
}

void ReplyBuilder::payload(size_t offset, size_t length) {
  if (length) out_.pieces.push_back({true, offset, length});
}

void ReplyBuilder::chunk_header(uint16_t flags, uint16_t type, uint64_t cookie, uint32_t length) {
  std::byte* p = append(kChunkHeaderSize);
  wire::store_u32(p, kStructuredReplyMagic);
  wire::store_u16(p + 4, flags);
  wire::store_u16(p + 6, type);
  wire::store_u64(p + 8, cookie);
  wire::store_u32(p + 16, length);
}

void ReplyBuilder::offset_data_header(uint64_t cookie, uint64_t offset, uint32_t data_length,
                                      bool done) {
  chunk_header(done ? kReplyFlagDone : 0, kReplyTypeOffsetData, cookie, 8 + data_length);
  wire::store_u64(append(8), offset);
}

void ReplyBuilder::offset_hole(uint64_t cookie, uint64_t offset, uint32_t length, bool done) {
  chunk_header(done ? kReplyFlagDone : 0, kReplyTypeOffsetHole, cookie, 12);
  std::byte* p = append(12);
  wire::store_u64(p, offset);
  wire::store_u32(p + 8, length);
}

void ReplyBuilder::none(uint64_t cookie) {
  chunk_header(kReplyFlagDone, kReplyTypeNone, cookie, 0);
}

void ReplyBuilder::error(uint64_t cookie, uint32_t error, std::string_view message) {
  message = message.substr(0, kMaxString);
  chunk_header(kReplyFlagDone, kReplyTypeError, cookie, static_cast<uint32_t>(6 + message.size()));
  std::byte* p = append(6 + message.size());
  wire::store_u32(p, error);
  wire::store_u16(p + 4, static_cast<uint16_t>(message.size()));
  if (!message.empty()) std::memcpy(p + 6, message.data(), message.size());
}

void ReplyBuilder::block_status(uint64_t cookie, uint32_t context_id,
                                std::span<const Extent> extents, bool done) {
  uint32_t length = static_cast<uint32_t>(4 + 8 * extents.size());
  chunk_header(done ? kReplyFlagDone : 0, kReplyTypeBlockStatus, cookie, length);
  std::byte* p = append(length);
  wire::store_u32(p, context_id);
  p += 4;
  for (const Extent& e : extents) {
    wire::store_u32(p, static_cast<uint32_t>(e.length));
    wire::store_u32(p + 4, e.flags);
    p += 8;
  }
}

void build_structured_read(ReplyBuilder& reply, uint64_t cookie, uint64_t offset, uint32_t length,
                           std::vector<ByteRange>& zeros, uint32_t min_hole) {
  const uint64_t end = offset + length;
  // Clip to the request and drop empty ranges.
  size_t kept = 0;
  for (ByteRange r : zeros) {
    uint64_t b = std::max(r.offset, offset);
    uint64_t e = r.length > UINT64_MAX - r.offset ? UINT64_MAX : r.end();
    e = std::min(e, end);
    if (b < e) zeros[kept++] = {b, e - b};
  }
  zeros.resize(kept);
  std::sort(zeros.begin(), zeros.end(),
            [](const ByteRange& a, const ByteRange& b) { return a.offset < b.offset; });
  // Merge overlapping or touching ranges, then keep the ones worth a chunk.
  kept = 0;
  for (ByteRange r : zeros) {
    if (kept && zeros[kept - 1].end() >= r.offset) {
      ByteRange& last = zeros[kept - 1];
      last.length = std::max(last.end(), r.end()) - last.offset;
    } else {
      zeros[kept++] = r;
    }
  }
  zeros.resize(kept);
  std::erase_if(zeros, [&](const ByteRange& r) { return r.length < min_hole; });

  if (zeros.empty()) {
    reply.offset_data_header(cookie, offset, length, true);
    reply.payload(0, length);
    return;
  }
  uint64_t at = offset;
  for (size_t i = 0; i < zeros.size(); ++i) {
    const ByteRange& hole = zeros[i];
    if (hole.offset > at) {
      reply.offset_data_header(cookie, at, static_cast<uint32_t>(hole.offset - at), false);
      reply.payload(at - offset, hole.offset - at);
    }
    bool last = i + 1 == zeros.size() && hole.end() == end;
    reply.offset_hole(cookie, hole.offset, static_cast<uint32_t>(hole.length), last);
    at = hole.end();
  }
  if (at < end) {
    reply.offset_data_header(cookie, at, static_cast<uint32_t>(end - at), true);
    reply.payload(at - offset, end - at);
  }
}

}  // namespace hydrate::nbd
