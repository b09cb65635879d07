#pragma once

#include <asio/awaitable.hpp>
#include <asio/experimental/channel.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>

namespace hydrate::nbd {

// Lets one coroutine sleep until another coroutine on the same executor has news for it (the
// reply writer waiting for replies, the request reader waiting for memory to be released).
// Not thread-safe: both sides run on the connection's event loop. A notify() with nobody
// waiting is remembered, so the waiter re-checks its condition instead of sleeping.
//
// Built on a one-slot channel rather than a timer: waking costs no system call (a timer
// re-arms the event loop's timerfd on every wait), and the writer waits once per batch.
class Wakeup {
 public:
  explicit Wakeup(const asio::any_io_executor& executor) : channel_(executor, 1) {}

  void notify() {
    if (!waiting_) {
      pending_ = true;
    } else if (!signalled_) {
      signalled_ = true;
      channel_.try_send(asio::error_code{}, 0);
    }
  }

  asio::awaitable<void> wait() {
    if (pending_) {
      pending_ = false;
      co_return;
    }
    waiting_ = true;
    asio::error_code ignored;
    co_await channel_.async_receive(asio::redirect_error(asio::use_awaitable, ignored));
    waiting_ = false;
    signalled_ = false;
    pending_ = false;
  }

 private:
  // The int is padding: asio 1.22 cannot instantiate a channel of void(error_code) alone.
  asio::experimental::channel<void(asio::error_code, int)> channel_;
  bool waiting_ = false;
  bool signalled_ = false;
  bool pending_ = false;
};

}  // namespace hydrate::nbd
