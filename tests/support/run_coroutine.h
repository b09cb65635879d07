#pragma once

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <chrono>
#include <exception>
#include <optional>
#include <stdexcept>

namespace hydrate::test {

// Runs `task` on `context` from the calling thread until it completes (other work on the
// context, such as background timers, keeps running meanwhile) and returns its result. Fails
// loudly instead of hanging when the task does not finish within `limit`.
template <typename T>
T run_coroutine(asio::io_context& context, asio::awaitable<T> task,
                std::chrono::seconds limit = std::chrono::seconds(60)) {
  std::optional<T> result;
  std::exception_ptr error;
  bool done = false;
  asio::co_spawn(context, std::move(task), [&](std::exception_ptr e, T value) {
    error = e;
    if (!e) result.emplace(std::move(value));
    done = true;
  });
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done) {
    if (context.stopped()) context.restart();  // ran out of work while waiting on another thread
    context.run_one_for(std::chrono::milliseconds(100));
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("run_coroutine: task did not finish in time");
  }
  if (error) std::rethrow_exception(error);
  return std::move(*result);
}

inline void run_coroutine(asio::io_context& context, asio::awaitable<void> task,
                          std::chrono::seconds limit = std::chrono::seconds(60)) {
  std::exception_ptr error;
  bool done = false;
  asio::co_spawn(context, std::move(task), [&](std::exception_ptr e) {
    error = e;
    done = true;
  });
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done) {
    if (context.stopped()) context.restart();  // ran out of work while waiting on another thread
    context.run_one_for(std::chrono::milliseconds(100));
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("run_coroutine: task did not finish in time");
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace hydrate::test
