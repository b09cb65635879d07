#include "tests/crash/hop_latency_source.h"

#include "tests/crash/scheduler_hops.h"

namespace hydrate::crash {

unsigned HopLatencySource::next_hops() {
  std::lock_guard lock(mutex_);
  return static_cast<unsigned>(random_.below(max_hops_ + 1));
}

asio::awaitable<IoResult> HopLatencySource::read(uint64_t offset, std::span<std::byte> out) {
  co_await scheduler_hops(next_hops());
  co_return co_await target().read(offset, out);
}

asio::awaitable<IoResult> HopLatencySource::block_status(uint64_t offset, uint64_t length,
                                                         ExtentList& out) {
  co_await scheduler_hops(next_hops());
  co_return co_await target().block_status(offset, length, out);
}

}  // namespace hydrate::crash
