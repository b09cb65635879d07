#include "nbd-server/socket_transport.h"

#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

namespace hydrate::nbd {

SocketTransport::SocketTransport(asio::generic::stream_protocol::socket socket)
    : socket_(std::move(socket)) {}

asio::awaitable<size_t> SocketTransport::read_some(std::span<std::byte> into, std::error_code& ec) {
  if (receiving_stopped_) {
    ec = asio::error::eof;
    co_return 0;
  }
  size_t n = co_await socket_.async_read_some(asio::buffer(into.data(), into.size()),
                                              asio::redirect_error(asio::use_awaitable, ec));
  co_return n;
}

asio::awaitable<void> SocketTransport::write(const std::vector<asio::const_buffer>& buffers,
                                             std::error_code& ec) {
  // asio's transfer_all caps every system call at 64 KiB, which turns a 1 MiB reply into 16
  // sendmsg calls and 16 trips through the event loop; let the kernel take what it can.
  auto as_much_as_possible = [](const std::error_code& error, size_t) -> size_t {
    return error ? 0 : size_t{1} << 30;
  };
  co_await asio::async_write(socket_, buffers, as_much_as_possible,
                             asio::redirect_error(asio::use_awaitable, ec));
}

void SocketTransport::stop_receiving() {
  receiving_stopped_ = true;
  // SHUT_RD wakes a blocked receive with end-of-stream on Linux, for TCP and Unix sockets.
  std::error_code ignored;
  socket_.shutdown(asio::socket_base::shutdown_receive, ignored);
}

asio::awaitable<void> SocketTransport::finish() {
  std::error_code ignored;
  socket_.shutdown(asio::socket_base::shutdown_both, ignored);
  socket_.close(ignored);
  co_return;
}

void SocketTransport::close() {
  std::error_code ignored;
  socket_.close(ignored);
}

}  // namespace hydrate::nbd
