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
  template <typename Fn>
  asio::awaitable<std::invoke_result_t<Fn&>> run(Fn fn);

 private:
  asio::thread_pool& pool();

  unsigned threads_;
  mutable std::mutex mutex_;
  std::unique_ptr<asio::thread_pool> pool_;
};

template <typename Fn>
asio::awaitable<std::invoke_result_t<Fn&>> BlockingPool::run(Fn fn) {
  using Result = std::invoke_result_t<Fn&>;
  asio::thread_pool& threads = pool();
  // The work guard keeps the caller's event loop alive (run() does not return) until the result
  // has been posted back to it.
  auto start = [&threads, fn = std::move(fn)](auto handler) mutable {
    auto work = asio::make_work_guard(handler);
    asio::post(threads, [fn = std::move(fn), handler = std::move(handler),
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
  };
  if constexpr (std::is_void_v<Result>) {
    co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(std::exception_ptr)>(
        std::move(start), asio::use_awaitable);
  } else {
    co_return co_await asio::async_initiate<const asio::use_awaitable_t<>&,
                                            void(std::exception_ptr, Result)>(std::move(start),
                                                                              asio::use_awaitable);
  }
}

}  // namespace hydrate
