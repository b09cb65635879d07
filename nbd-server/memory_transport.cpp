#include "nbd-server/memory_transport.h"

#include <algorithm>
#include <asio/error.hpp>
#include <cstring>

namespace hydrate::nbd {

MemoryTransport::MemoryTransport(asio::any_io_executor executor, std::vector<std::byte> input,
                                 size_t max_read, size_t max_output)
    : executor_(std::move(executor)),
      input_(std::move(input)),
      max_read_(std::max<size_t>(max_read, 1)),
      max_output_(max_output) {}

asio::awaitable<size_t> MemoryTransport::read_some(std::span<std::byte> into, std::error_code& ec) {
  if (closed_) {
    ec = asio::error::operation_aborted;
    co_return 0;
  }
  size_t n = std::min({into.size(), input_.size() - position_, max_read_});
  if (n == 0) {
    ec = asio::error::eof;
    co_return 0;
  }
  std::memcpy(into.data(), input_.data() + position_, n);
  position_ += n;
  ec = {};
  co_return n;
}

asio::awaitable<void> MemoryTransport::write(const std::vector<asio::const_buffer>& buffers,
                                             std::error_code& ec) {
  if (closed_) {
    ec = asio::error::broken_pipe;
    co_return;
  }
  for (const auto& b : buffers) {
    size_t n = std::min(b.size(), max_output_ - std::min(max_output_, output_.size()));
    const auto* p = static_cast<const std::byte*>(b.data());
    output_.insert(output_.end(), p, p + n);
  }
  ec = {};
}

}  // namespace hydrate::nbd
