#include "nbd-server/receive_buffer.h"

#include <algorithm>
#include <cstring>

namespace hydrate::nbd {

ReceiveBuffer::ReceiveBuffer(size_t capacity)
    : storage_(new std::byte[capacity]), capacity_(capacity) {}

void ReceiveBuffer::compact() {
  if (begin_ == 0) return;
  size_t n = size();
  if (n) std::memmove(storage_.get(), storage_.get() + begin_, n);
  begin_ = 0;
  end_ = n;
}

asio::awaitable<bool> ReceiveBuffer::fill(Transport& transport, size_t n, std::error_code& ec) {
  if (size() >= n) co_return true;
  if (capacity_ - begin_ < n) compact();
  while (size() < n) {
    if (end_ == capacity_) compact();
    size_t got = co_await transport.read_some(
        std::span<std::byte>(storage_.get() + end_, capacity_ - end_), ec);
    if (ec || got == 0) {
      if (!ec) ec = std::make_error_code(std::errc::connection_reset);
      co_return false;
    }
    end_ += got;
  }
  co_return true;
}

asio::awaitable<bool> ReceiveBuffer::read_exact(Transport& transport, std::span<std::byte> out,
                                                std::error_code& ec) {
  size_t done = std::min(out.size(), size());
  if (done) std::memcpy(out.data(), data(), done);
  consume(done);
  if (done == out.size()) co_return true;
  if (size() == 0) begin_ = end_ = 0;
  size_t left = out.size() - done;
  if (left <= capacity_ / 2) {
    if (!co_await fill(transport, left, ec)) co_return false;
    std::memcpy(out.data() + done, data(), left);
    consume(left);
    co_return true;
  }
  while (done < out.size()) {
    size_t got = co_await transport.read_some(out.subspan(done), ec);
    if (ec || got == 0) {
      if (!ec) ec = std::make_error_code(std::errc::connection_reset);
      co_return false;
    }
    done += got;
  }
  co_return true;
}

asio::awaitable<bool> ReceiveBuffer::discard(Transport& transport, uint64_t n,
                                             std::error_code& ec) {
  while (n > 0) {
    if (size() == 0) {
      begin_ = end_ = 0;
      if (!co_await fill(transport, 1, ec)) co_return false;
    }
    size_t drop = static_cast<size_t>(std::min<uint64_t>(n, size()));
    consume(drop);
    n -= drop;
  }
  co_return true;
}

std::span<const std::byte> ReceiveBuffer::take_all() {
  std::span<const std::byte> all(data(), size());
  begin_ = end_ = 0;
  return all;
}

}  // namespace hydrate::nbd
