#pragma once

#include <asio/awaitable.hpp>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "engine/extent.h"
#include "engine/io_result.h"

namespace hydrate {

inline constexpr uint32_t kMaxPayload = 32u << 20;  // what every request may carry (NBD spec)

// What an export offers; the NBD server turns it into transmission flags and NBD_INFO replies.
struct ExportInfo {
  std::string name;
  std::string description;
  uint64_t size = 0;
  bool read_only = false;
  bool can_flush = true;
  bool can_fua = true;
  bool can_trim = true;
  bool can_zero = true;
  bool can_fast_zero = true;
  bool can_cache = true;
  // True only when every connection sees one export-wide state: a FLUSH on any connection
  // covers writes completed on all of them (DESIGN.md §7).
  bool can_multi_conn = true;
  bool rotational = false;
  uint32_t min_block = 1;
  uint32_t preferred_block = 4096;
  uint32_t max_block = kMaxPayload;
};

struct WriteFlags {
  bool fua = false;
};

struct ZeroFlags {
  bool fua = false;
  bool may_trim = true;     // false when the client sent NO_HOLE
  bool fast_only = false;   // FAST_ZERO: fail with ENOTSUP rather than fall back to writing
};

// The asynchronous block interface every export implements (DESIGN.md §2). It knows nothing
// about the NBD wire format. All offsets and lengths arrive already validated against
// info().size by the caller. Coroutines resume on the caller's executor; implementations are
// safe to call concurrently from several threads and connections.
class Export {
 public:
  virtual ~Export() = default;

  virtual const ExportInfo& info() const = 0;

  // Fills `out` completely. When `zeros` is not null the export may append ranges (absolute
  // offsets, inside the request) that it knows read as zero, so a server can send holes.
  virtual asio::awaitable<IoResult> read(uint64_t offset, std::span<std::byte> out,
                                         std::vector<ByteRange>* zeros) = 0;
  virtual asio::awaitable<IoResult> write(uint64_t offset, std::span<const std::byte> data,
                                          WriteFlags flags) = 0;
  // Completes only when every write completed before it, on any connection, is durable.
  virtual asio::awaitable<IoResult> flush() = 0;
  virtual asio::awaitable<IoResult> trim(uint64_t offset, uint64_t length, WriteFlags flags) = 0;
  virtual asio::awaitable<IoResult> zero(uint64_t offset, uint64_t length, ZeroFlags flags) = 0;
  virtual asio::awaitable<IoResult> cache(uint64_t offset, uint64_t length) = 0;

  // Metadata contexts this export can answer, e.g. "base:allocation", "hydrate:state".
  virtual std::vector<std::string> meta_contexts() const = 0;
  // Appends extents of context `meta_contexts()[context]` starting at `offset`, covering at
  // most `length` bytes (at least one extent on success). `max_extents` bounds the reply.
  virtual asio::awaitable<IoResult> block_status(size_t context, uint64_t offset, uint64_t length,
                                                 size_t max_extents, ExtentList& out) = 0;
};

}  // namespace hydrate
