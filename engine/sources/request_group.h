#pragma once

#include <asio/awaitable.hpp>
#include <cstddef>
#include <mutex>

#include "engine/async_event.h"
#include "engine/io_result.h"

namespace hydrate {

// The caller's side of one Source call that became several requests (a read split at the
// server's request size limit). The requests finish on connection threads in any order; the
// caller awaits wait() on its own executor and gets the first failure, or success. The caller
// must not release its buffers before wait() completes: every request finishes first.
class RequestGroup {
 public:
  explicit RequestGroup(size_t requests) : remaining_(requests) {}
  RequestGroup(const RequestGroup&) = delete;
  RequestGroup& operator=(const RequestGroup&) = delete;

  // Called exactly once per request, from any thread.
  void finish(IoResult result) {
    {
      std::lock_guard lock(mutex_);
      if (!result.ok() && result_.ok()) result_ = std::move(result);
      if (--remaining_ > 0) return;
    }
    done_.set();
  }

  asio::awaitable<IoResult> wait() {
    co_await done_.async_wait(asio::use_awaitable);
    std::lock_guard lock(mutex_);
    co_return result_;
  }

 private:
  std::mutex mutex_;
  size_t remaining_;
  IoResult result_;
  AsyncEvent done_;
};

}  // namespace hydrate
