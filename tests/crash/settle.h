#pragma once

#include <asio/io_context.hpp>
#include <chrono>

namespace hydrate::crash {

// Runs `io` from the calling thread until `done()` holds; false if it did not within `limit`.
template <typename Predicate>
bool run_until(asio::io_context& io, Predicate done, std::chrono::steady_clock::duration limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    if (io.stopped()) io.restart();
    io.run_one_for(std::chrono::milliseconds(20));
  }
  return true;
}

// Runs whatever is ready on `io` (posted wake-ups, loops noticing they were stopped) without
// waiting for timers.
inline void settle(asio::io_context& io) {
  for (int i = 0; i < 64; ++i) {
    if (io.stopped()) io.restart();
    if (io.poll() == 0) break;
  }
}

}  // namespace hydrate::crash
