#pragma once

#include <asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/io_result.h"
#include "nbd-server/buffer_pool.h"
#include "nbd-server/handshake.h"
#include "nbd-server/receive_buffer.h"
#include "nbd-server/reply_builder.h"
#include "nbd-server/request_header.h"
#include "nbd-server/request_validation.h"
#include "nbd-server/transport.h"
#include "nbd-server/wakeup.h"

namespace hydrate::nbd {

// Bounds on one connection's transmission phase.
struct TransmissionLimits {
  // Payload bytes (WRITE data received, READ data being produced) held by requests in
  // flight; the reader stops taking requests while this is reached.
  size_t max_inflight_bytes = 64u << 20;
  size_t max_inflight_requests = 1024;
  // Extents per BLOCK_STATUS chunk (the spec suggests at most 2^20).
  size_t max_extents = 64 * 1024;
  // Reads at least this long ask the export for known-zero ranges (sent as OFFSET_HOLE).
  uint32_t sparse_read_threshold = 64 * 1024;
  uint32_t min_hole = 4096;
};

// The transmission phase of one connection (nbd.md §1.5–1.10). A reader parses requests out
// of the receive buffer and starts one coroutine per request; requests run concurrently and
// complete in any order; a single writer sends finished replies, gathering everything that is
// ready into one write. Each request owns a Slot (header, payload buffer, encoded reply) that
// is recycled, so steady-state I/O does not allocate.
class Transmission {
 public:
  Transmission(Transport& transport, ReceiveBuffer& in, NegotiatedSession session, std::string peer,
               TransmissionLimits limits = {});
  ~Transmission();
  Transmission(const Transmission&) = delete;
  Transmission& operator=(const Transmission&) = delete;

  // Serves requests until NBD_CMD_DISC, end of stream, a fatal protocol error or shutdown;
  // returns once every request received has been answered (or the client is gone).
  asio::awaitable<void> run();

  // Stop taking new requests; those already received finish and are answered.
  void begin_shutdown();

  uint64_t requests() const { return requests_; }
  // Why the phase ended: "disconnect", "end of stream", or the protocol violation / error.
  const std::string& end_reason() const { return end_reason_; }

 private:
  struct Slot;

  asio::awaitable<void> read_requests();
  asio::awaitable<void> write_replies();
  asio::awaitable<void> serve(Slot* slot);
  asio::awaitable<void> serve_read(Slot& slot);
  asio::awaitable<void> serve_block_status(Slot& slot);

  Slot* acquire();
  void release(Slot* slot);
  void finish(Slot* slot);  // reply is encoded: queue it for the writer
  void reply_error(Slot& slot, uint32_t error, std::string_view message);
  // The export failed the request (or threw): maps its errno to the NBD error, logs, and
  // encodes the error reply. `what` names the request (describe(), plus the context for
  // BLOCK_STATUS). The one path from a failed request to its reply.
  void reply_failure(Slot& slot, const IoResult& result, std::string_view what);
  // Takes a pooled buffer for a payload; false when memory is exhausted.
  bool allocate_payload(Slot& slot, size_t length);
  std::string describe(const RequestHeader& h) const;
  bool complete_request_buffered() const;

  Transport& transport_;
  ReceiveBuffer& in_;
  NegotiatedSession session_;
  std::string peer_;
  std::string export_name_;
  TransmissionLimits limits_;
  RequestLimits request_limits_;
  std::vector<std::string> context_names_;

  BufferPool pool_;
  std::vector<std::unique_ptr<Slot>> free_slots_;
  std::vector<Slot*> queue_;  // replies ready to send, in completion order
  Wakeup writer_wakeup_;
  Wakeup reader_wakeup_;  // memory released
  Wakeup finished_;       // writer done

  size_t live_ = 0;     // slots handed out and not yet released
  size_t serving_ = 0;  // request coroutines still running
  size_t inflight_bytes_ = 0;
  uint64_t requests_ = 0;
  bool reader_done_ = false;
  bool writer_done_ = false;
  bool stopping_ = false;
  bool broken_ = false;  // the stream is unusable: replies are dropped
  std::string end_reason_;
};

}  // namespace hydrate::nbd
