#pragma once

#include "engine/run_to_completion.h"

namespace hydrate::test {

// The metadata tests' name for engine/run_to_completion.h.
template <typename T>
T sync_wait(asio::awaitable<T> awaitable) {
  return run_to_completion(std::move(awaitable));
}

}  // namespace hydrate::test
