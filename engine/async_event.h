#pragma once

#include <asio/associated_executor.hpp>
#include <asio/execution/outstanding_work.hpp>
#include <asio/prefer.hpp>
#include <asio/async_result.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace hydrate {

// A one-shot event that coroutines on any thread can await and any thread can set. Waiters
// resume on their own executor (never inline in set()), so setting it under a lock or from a
// completion callback is safe. asio's channels are bound to one executor; engine state is
// shared by connections living on different threads, hence this.
class AsyncEvent {
 public:
  AsyncEvent() = default;
  AsyncEvent(const AsyncEvent&) = delete;
  AsyncEvent& operator=(const AsyncEvent&) = delete;

  template <typename CompletionToken = asio::use_awaitable_t<>>
  auto async_wait(CompletionToken&& token = {}) {
    return asio::async_initiate<CompletionToken, void()>(
        [this](auto handler) {
          std::unique_lock lock(mutex_);
          if (set_) {
            lock.unlock();
            auto executor = asio::get_associated_executor(handler);
            asio::post(executor, std::move(handler));
            return;
          }
          waiters_.push_back(std::make_unique<Waiter<decltype(handler)>>(std::move(handler)));
        },
        token);
  }

  // Completes with true once set, or with false after `timeout` — whichever comes first.
  template <typename CompletionToken = asio::use_awaitable_t<>>
  auto async_wait_for(std::chrono::steady_clock::duration timeout, CompletionToken&& token = {}) {
    return asio::async_initiate<CompletionToken, void(bool)>(
        [this, timeout](auto handler) {
          auto executor = asio::get_associated_executor(handler);
          std::unique_lock lock(mutex_);
          if (set_) {
            lock.unlock();
            asio::post(executor, [h = std::move(handler)]() mutable { std::move(h)(true); });
            return;
          }
          auto timed = std::make_shared<TimedWaiter<decltype(handler)>>(std::move(handler));
          waiters_.push_back(std::make_unique<TimedRef>(timed));
          lock.unlock();
          timed->timer.expires_after(timeout);
          timed->timer.async_wait([timed](std::error_code ec) {
            if (!ec) timed->fire(false);
          });
        },
        token);
  }

  void set() {
    std::vector<std::unique_ptr<WaiterBase>> waiters;
    {
      std::lock_guard lock(mutex_);
      if (set_) return;
      set_ = true;
      waiters.swap(waiters_);
    }
    for (auto& w : waiters) w->complete();
  }

  bool is_set() const {
    std::lock_guard lock(mutex_);
    return set_;
  }

 private:
  struct WaiterBase {
    virtual ~WaiterBase() = default;
    virtual void complete() = 0;
  };
  // Keeps the waiter's io_context from running out of work while it waits.
  template <typename Handler>
  struct Waiter final : WaiterBase {
    explicit Waiter(Handler h)
        : handler(std::move(h)),
          work(asio::prefer(asio::get_associated_executor(handler),
                            asio::execution::outstanding_work.tracked)) {}
    void complete() override {
      auto executor = asio::get_associated_executor(handler);
      asio::post(executor, std::move(handler));
    }
    Handler handler;
    decltype(asio::prefer(asio::get_associated_executor(std::declval<Handler&>()),
                          asio::execution::outstanding_work.tracked)) work;
  };

  // A waiter racing a timer: whichever calls fire() first completes the handler.
  struct TimedBase {
    virtual ~TimedBase() = default;
    virtual void fire(bool was_set) = 0;
  };
  template <typename Handler>
  struct TimedWaiter final : TimedBase, std::enable_shared_from_this<TimedWaiter<Handler>> {
    explicit TimedWaiter(Handler h)
        : handler(std::move(h)), timer(asio::get_associated_executor(handler)) {}
    void fire(bool was_set) override {
      if (fired.exchange(true)) return;
      auto executor = asio::get_associated_executor(handler);
      // The timer belongs to the waiter's executor; cancel it there, never from here.
      if (was_set) asio::post(executor, [self = this->shared_from_this()] { self->timer.cancel(); });
      asio::post(executor, [h = std::move(handler), was_set]() mutable { std::move(h)(was_set); });
    }
    Handler handler;
    asio::steady_timer timer;
    std::atomic<bool> fired{false};
  };
  struct TimedRef final : WaiterBase {
    explicit TimedRef(std::shared_ptr<TimedBase> w) : waiter(std::move(w)) {}
    void complete() override { waiter->fire(true); }
    std::shared_ptr<TimedBase> waiter;
  };

  mutable std::mutex mutex_;
  bool set_ = false;
  std::vector<std::unique_ptr<WaiterBase>> waiters_;
};

}  // namespace hydrate
