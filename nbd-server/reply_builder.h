#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "engine/extent.h"

namespace hydrate::nbd {

// The wire form of one request's reply as a gather list: headers and metadata are encoded
// into `control`, read data stays where the export put it (the request's payload buffer), so
// a reply is written without copying data.
struct ReplyPieces {
  struct Piece {
    bool from_payload = false;
    size_t offset = 0;
    size_t length = 0;
  };
  std::vector<std::byte> control;
  std::vector<Piece> pieces;

  void clear() {
    control.clear();
    pieces.clear();
  }
  size_t total_bytes() const;
  // Concatenates the reply (tests and the fuzzer inspect it this way).
  std::vector<std::byte> flatten(std::span<const std::byte> payload) const;
};

// Encodes simple replies and structured reply chunks (nbd.md §1.5, §1.8) into ReplyPieces.
class ReplyBuilder {
 public:
  explicit ReplyBuilder(ReplyPieces& out) : out_(out) {}

  void simple(uint64_t cookie, uint32_t error);
  // A piece of the payload buffer, sent after whatever was encoded before.
  void payload(size_t offset, size_t length);

  void chunk_header(uint16_t flags, uint16_t type, uint64_t cookie, uint32_t length);
  void offset_data_header(uint64_t cookie, uint64_t offset, uint32_t data_length, bool done);
  void offset_hole(uint64_t cookie, uint64_t offset, uint32_t length, bool done);
  void none(uint64_t cookie);
  // NBD_REPLY_TYPE_ERROR with NBD_REPLY_FLAG_DONE; the message is cut to the protocol's 4096.
  void error(uint64_t cookie, uint32_t error, std::string_view message);
  void block_status(uint64_t cookie, uint32_t context_id, std::span<const Extent> extents,
                    bool done);

 private:
  std::byte* append(size_t n);
  ReplyPieces& out_;
};

// The structured reply to a successful READ of [offset, offset + length) whose data sits at
// the start of the payload buffer: OFFSET_HOLE chunks for the `zeros` ranges (clipped, sorted,
// merged; ranges shorter than `min_hole` are sent as data), OFFSET_DATA for the rest, DONE on
// the last chunk. `zeros` is reordered in place.
void build_structured_read(ReplyBuilder& reply, uint64_t cookie, uint64_t offset, uint32_t length,
                           std::vector<ByteRange>& zeros, uint32_t min_hole);

}  // namespace hydrate::nbd
