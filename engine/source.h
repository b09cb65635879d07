#pragma once

#include <asio/awaitable.hpp>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "engine/extent.h"
#include "engine/io_result.h"

namespace hydrate {

// Counters every source keeps; shown by `hydrate status`.
struct SourceStats {
  uint64_t bytes_read = 0;
  uint64_t reads = 0;
  uint64_t read_errors = 0;  // failed attempts, including ones later retried
  uint64_t block_status_calls = 0;
  uint64_t reconnects = 0;
  unsigned connections = 0;  // currently connected
  bool connected = false;
  std::string last_error;
};

// The read-only original a clone copies from (DESIGN.md §1): a remote NBD export, an nbdkit
// plugin run as a subprocess, or a local file or device. Implementations reconnect by
// themselves; a call fails only after `timeout` without success, never with wrong data.
class Source {
 public:
  virtual ~Source() = default;

  // Completes when the source is usable (size known) or fails after the connect timeout.
  virtual asio::awaitable<IoResult> open() = 0;
  virtual uint64_t size() const = 0;
  // Stable name recorded in the clone's metadata so a restart against another source is
  // refused (I7), e.g. the URI or the canonical path.
  virtual std::string identity() const = 0;
  // How many requests may usefully be in flight at once (connections × per-connection depth).
  virtual unsigned parallelism() const = 0;

  virtual asio::awaitable<IoResult> read(uint64_t offset, std::span<std::byte> out) = 0;
  // The same read for background hydration (DESIGN §5: on-demand work goes first). A source
  // with request queues of its own (NBD) holds these behind every read() and sends them in
  // smaller pieces, so a client's read never waits in hydrate behind the background copy; a
  // source without queues (a local file) reads it like any other.
  virtual asio::awaitable<IoResult> read_background(uint64_t offset, std::span<std::byte> out) {
    return read(offset, out);
  }
  // `base:allocation` extents from `offset` covering at most `length` bytes, at least one,
  // appended to `out`. The source may describe less than asked (ask again from where it
  // stopped); a range running past the end is clipped there, so a scanner can ask for huge
  // ranges.
  virtual asio::awaitable<IoResult> block_status(uint64_t offset, uint64_t length,
                                                 ExtentList& out) = 0;
  virtual bool can_discard() const = 0;
  // Only for discard_source_after_commit (I6): regions already committed on the destination.
  virtual asio::awaitable<IoResult> discard(uint64_t offset, uint64_t length) = 0;

  virtual SourceStats stats() const = 0;
  // Releases connections and subprocesses; after this every call fails with ESHUTDOWN.
  virtual asio::awaitable<void> close() = 0;
};

}  // namespace hydrate
