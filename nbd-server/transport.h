#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/buffer.hpp>
#include <cstddef>
#include <span>
#include <string>
#include <system_error>
#include <vector>

namespace hydrate::nbd {

// The byte stream under one NBD connection: a plain socket, a TLS session layered on one after
// NBD_OPT_STARTTLS, or an in-memory stream for the fuzzer. The handshake and the transmission
// phase only talk to this interface, so STARTTLS can swap the stream in place.
//
// One reader and one writer may be active at the same time (the transmission phase reads
// requests while it writes replies); everything else happens on the connection's executor.
// Errors come back in `ec`, never as exceptions.
class Transport {
 public:
  virtual ~Transport() = default;

  virtual asio::any_io_executor executor() = 0;

  // Reads at least one byte into `into`; returns 0 with `ec` set at end of stream or on error.
  virtual asio::awaitable<size_t> read_some(std::span<std::byte> into, std::error_code& ec) = 0;
  // Writes all of `buffers`, gathered into as few system calls as possible.
  virtual asio::awaitable<void> write(const std::vector<asio::const_buffer>& buffers,
                                      std::error_code& ec) = 0;

  // Makes a pending or future read_some end as if the peer had closed its side; writes still
  // work. Used by graceful shutdown to stop taking requests while replies drain.
  virtual void stop_receiving() = 0;
  // Orderly end of the stream (TLS close_notify, then close).
  virtual asio::awaitable<void> finish() = 0;
  // Abortive close: pending operations complete with an error. Safe to call more than once.
  virtual void close() = 0;

  virtual bool encrypted() const { return false; }
};

}  // namespace hydrate::nbd
