#pragma once

#include <asio/awaitable.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <chrono>
#include <exception>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>

namespace hydrate::test {

// Runs `task` on `context` from the calling thread until it completes and returns its result;
// an exception thrown inside it is rethrown here. Fails loudly instead of hanging when the task
// does not finish within `limit`.
//
// Why not engine/run_to_completion.h: that one runs on a private io_context until the context
// runs out of work, and has no deadline (right for the `hydrate meta` commands and fuzzers).
// Tests instead drive the io_context their fixture's objects are bound to (a clone volume, a
// source, timers), return as soon as this task is done while other work on the context stays
// queued for the test to inspect or settle, and must turn a hang into a failure.
template <typename T>
T run_coroutine(asio::io_context& context, asio::awaitable<T> task,
                std::chrono::seconds limit = std::chrono::seconds(60)) {
  using Result = std::conditional_t<std::is_void_v<T>, std::monostate, T>;
  std::optional<Result> result;
  std::exception_ptr error;
  bool done = false;
  auto finish = [&](std::exception_ptr e, auto&&... value) {
    error = e;
    if (!e) result.emplace(std::move(value)...);
    done = true;
  };
  asio::co_spawn(context, std::move(task), std::move(finish));
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done) {
    if (context.stopped()) context.restart();  // ran out of work while waiting on another thread
    context.run_one_for(std::chrono::milliseconds(100));
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("run_coroutine: task did not finish in time");
  }
  if (error) std::rethrow_exception(error);
  if constexpr (!std::is_void_v<T>) return std::move(*result);
}

}  // namespace hydrate::test
