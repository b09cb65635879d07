#pragma once

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <exception>
#include <optional>
#include <utility>

namespace hydrate::test {

// Runs one awaitable to completion on a private io_context and returns its value; exceptions
// thrown inside it are rethrown here so a test sees them.
template <typename T>
T sync_wait(asio::awaitable<T> awaitable) {
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

}  // namespace hydrate::test
