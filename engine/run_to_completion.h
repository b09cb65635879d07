#pragma once

#include <asio/awaitable.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <exception>
#include <optional>
#include <utility>

namespace hydrate {

// Runs one awaitable to completion on a private io_context, on the calling thread, and returns
// its value; an exception thrown inside it is rethrown here. For callers with no event loop of
// their own (the `hydrate meta` commands, tests, fuzzers) over code that completes without
// other threads' help.
template <typename T>
T run_to_completion(asio::awaitable<T> awaitable) {
  asio::io_context context;
  std::optional<T> result;
  std::exception_ptr error;
  asio::co_spawn(context, std::move(awaitable), [&](std::exception_ptr e, T value) {
    error = e;
    if (!e) result = std::move(value);
  });
  context.run();
  if (error) std::rethrow_exception(error);
  return std::move(*result);
}

}  // namespace hydrate
