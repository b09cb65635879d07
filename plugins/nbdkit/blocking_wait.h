#pragma once

#include <asio/awaitable.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_future.hpp>
#include <utility>

namespace hydrate::nbdkit_plugin {

// nbdkit calls the plugin from its own worker threads and expects each call to block until the
// request is done; the engine is asio coroutines on its event loops. This runs `work` on
// `context` and parks the calling (nbdkit) thread until it finishes. An exception escaping the
// coroutine is rethrown here.
template <typename T>
T wait_for(asio::io_context& context, asio::awaitable<T> work) {
  return asio::co_spawn(context, std::move(work), asio::use_future).get();
}

}  // namespace hydrate::nbdkit_plugin
