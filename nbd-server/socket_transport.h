#pragma once

#include <asio/generic/stream_protocol.hpp>

#include "nbd-server/transport.h"

namespace hydrate::nbd {

// A connected stream socket (TCP or Unix) as a Transport.
class SocketTransport final : public Transport {
 public:
  explicit SocketTransport(asio::generic::stream_protocol::socket socket);

  asio::any_io_executor executor() override { return socket_.get_executor(); }
  asio::awaitable<size_t> read_some(std::span<std::byte> into, std::error_code& ec) override;
  asio::awaitable<void> write(const std::vector<asio::const_buffer>& buffers,
                              std::error_code& ec) override;
  void stop_receiving() override;
  asio::awaitable<void> finish() override;
  void close() override;

  asio::generic::stream_protocol::socket& socket() { return socket_; }

 private:
  asio::generic::stream_protocol::socket socket_;
  bool receiving_stopped_ = false;
};

}  // namespace hydrate::nbd
