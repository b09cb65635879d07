#pragma once

#include <asio/awaitable.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <system_error>

#include "nbd-server/transport.h"

namespace hydrate::nbd {

// Buffered reading from a Transport: one read_some() fetches as much as the socket has, and the
// parsers then take several option headers or requests out of it without further system calls.
class ReceiveBuffer {
 public:
  explicit ReceiveBuffer(size_t capacity = 256 * 1024);

  size_t size() const { return end_ - begin_; }
  const std::byte* data() const { return storage_.get() + begin_; }
  void consume(size_t n) { begin_ += n; }
  size_t capacity() const { return capacity_; }

  // Ensures at least `n` (≤ capacity) bytes are buffered. False at end of stream or on error.
  asio::awaitable<bool> fill(Transport& transport, size_t n, std::error_code& ec);
  // Moves exactly out.size() bytes into `out`: buffered bytes first; the rest of a large
  // payload is read straight into `out`, small ones go through the buffer so pipelined
  // requests behind them arrive in the same system call.
  asio::awaitable<bool> read_exact(Transport& transport, std::span<std::byte> out,
                                   std::error_code& ec);
  // Drops `n` bytes of the stream (an oversized payload), with bounded memory.
  asio::awaitable<bool> discard(Transport& transport, uint64_t n, std::error_code& ec);
  // Hands out whatever is buffered (bytes that arrived after STARTTLS's request belong to
  // the TLS layer).
  std::span<const std::byte> take_all();

 private:
  void compact();
  std::unique_ptr<std::byte[]> storage_;
  size_t capacity_;
  size_t begin_ = 0;
  size_t end_ = 0;
};

}  // namespace hydrate::nbd
