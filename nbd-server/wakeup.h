#pragma once

#include <asio/awaitable.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

namespace hydrate::nbd {

// Lets one coroutine sleep until another coroutine on the same executor has news for it (the
// reply writer waiting for replies, the request reader waiting for memory to be released).
// Not thread-safe: both sides run on the connection's event loop. A notify() with nobody
// waiting is remembered, so the waiter re-checks its condition instead of sleeping.
class Wakeup {
 public:
  explicit Wakeup(const asio::any_io_executor& executor) : timer_(executor) {
    timer_.expires_at(asio::steady_timer::time_point::max());
  }

  void notify() {
    pending_ = true;
    if (waiting_) timer_.cancel();
  }

  asio::awaitable<void> wait() {
    if (pending_) {
      pending_ = false;
      co_return;
    }
    waiting_ = true;
    std::error_code ignored;
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    waiting_ = false;
    pending_ = false;
    timer_.expires_at(asio::steady_timer::time_point::max());
  }

 private:
  asio::steady_timer timer_;
  bool waiting_ = false;
  bool pending_ = false;
};

}  // namespace hydrate::nbd
