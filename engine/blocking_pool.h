#pragma once

#include <asio/async_result.hpp>
#include <asio/awaitable.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>
#include <exception>
#include <memory>
#include <mutex>
#include <type_traits>
#include <utility>

namespace hydrate {

// Threads for system calls that may sleep (fdatasync, fallocate, reads that miss the page cache,
// SEEK_DATA on cold metadata). The event loops must never block in the kernel, so such a call
// is handed to a pool thread and the awaiting coroutine resumes on its own executor afterwards.
//
// One pool is shared by every export of a process: sized so that a slow fdatasync on one export
// never leaves reads elsewhere without a thread. Threads start on first use, not at
// construction, so a process may create its devices, bind, then fork (hydrate serve
// --daemonize) before any thread exists.
class BlockingPool {
 public:
  static constexpr unsigned kDefaultThreads = 16;

  explicit BlockingPool(unsigned threads = kDefaultThreads);
  // Waits for every queued call to finish.
  ~BlockingPool();
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  unsigned threads() const { return threads_; }
  bool started() const;

  // The process-wide pool used by devices that were given none. Its size is fixed at first
  // use; set_shared_threads() before that changes it (hydrate serve --threads / config).
  static BlockingPool& shared();
  static void set_shared_threads(unsigned threads);

  // Runs `fn()` on a pool thread; the caller resumes on its own executor with the result.
  // An exception thrown by `fn` is rethrown in the caller (I/O code returns IoResult instead).
  //
  // GCC 12 destroys a lambda temporary written inside a co_await expression twice, so a
  // capture like a shared_ptr loses a reference. Bind the lambda to a local first:
  //   auto job = [handle = handle_] { ... };
  //   co_await pool.run(std::move(job));
  template <typename Fn>
  asio::awaitable<std::invoke_result_t<Fn&>> run(Fn fn);

 private:
  asio::thread_pool& pool();

  unsigned threads_;
  mutable std::mutex mutex_;
  std::unique_ptr<asio::thread_pool> pool_;
};

namespace detail {

// The initiation of BlockingPool::run: queues `fn` on the pool and posts its result back to the
// handler's executor. The work guard keeps the caller's event loop alive (run() does not
// return) until the result has been posted back to it.
template <typename Fn>
struct BlockingCall {
  asio::thread_pool* threads;
  Fn fn;

  template <typename Handler>
  void operator()(Handler handler) {
    using Result = std::invoke_result_t<Fn&>;
    auto work = asio::make_work_guard(handler);
    asio::post(*threads, [fn = std::move(fn), handler = std::move(handler),
                          work = std::move(work)]() mutable {
      std::exception_ptr failure;
      if constexpr (std::is_void_v<Result>) {
        try {
          fn();
        } catch (...) {
          failure = std::current_exception();
        }
        asio::post(work.get_executor(), [handler = std::move(handler), failure]() mutable {
          std::move(handler)(failure);
        });
      } else {
        Result result{};
        try {
          result = fn();
        } catch (...) {
          failure = std::current_exception();
        }
        asio::post(work.get_executor(),
                   [handler = std::move(handler), failure, result = std::move(result)]() mutable {
                     std::move(handler)(failure, std::move(result));
                   });
      }
      work.reset();
    });
  }
};

template <typename Result>
struct CompletionSignature {
  using type = void(std::exception_ptr, Result);
};
template <>
struct CompletionSignature<void> {
  using type = void(std::exception_ptr);
};

}  // namespace detail

// Not a coroutine itself: the call is handed straight to asio, so nothing of `fn` lives in a
// frame of ours.
template <typename Fn>
asio::awaitable<std::invoke_result_t<Fn&>> BlockingPool::run(Fn fn) {
  using Result = std::invoke_result_t<Fn&>;
  using Signature = typename detail::CompletionSignature<Result>::type;
  return asio::async_initiate<const asio::use_awaitable_t<>&, Signature>(
      detail::BlockingCall<Fn>{&pool(), std::move(fn)}, asio::use_awaitable);
}

}  // namespace hydrate
