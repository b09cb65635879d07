#pragma once

#include <asio/io_context.hpp>
#include <vector>

#include "nbd-server/transport.h"

namespace hydrate::nbd {

// A client byte stream held in memory: reads hand out `input` (in slices of at most
// `max_read` bytes, to exercise partial reads), then end of stream; writes are collected in
// `output()`. Lets the fuzzer and unit tests run a whole connection without sockets.
class MemoryTransport final : public Transport {
 public:
  MemoryTransport(asio::any_io_executor executor, std::vector<std::byte> input,
                  size_t max_read = SIZE_MAX, size_t max_output = SIZE_MAX);

  asio::any_io_executor executor() override { return executor_; }
  asio::awaitable<size_t> read_some(std::span<std::byte> into, std::error_code& ec) override;
  asio::awaitable<void> write(const std::vector<asio::const_buffer>& buffers,
                              std::error_code& ec) override;
  void stop_receiving() override { position_ = input_.size(); }
  asio::awaitable<void> finish() override {
    closed_ = true;
    co_return;
  }
  void close() override { closed_ = true; }

  const std::vector<std::byte>& output() const { return output_; }
  bool closed() const { return closed_; }

 private:
  asio::any_io_executor executor_;
  std::vector<std::byte> input_;
  size_t position_ = 0;
  size_t max_read_;
  size_t max_output_;
  std::vector<std::byte> output_;
  bool closed_ = false;
};

}  // namespace hydrate::nbd
