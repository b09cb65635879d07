#pragma once

#include <asio/awaitable.hpp>
#include <asio/post.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

namespace hydrate::crash {

// Simulated latency that keeps a run deterministic: the caller goes to the back of its
// executor's queue `hops` times. On a single-threaded io_context the order in which waiting
// operations resume then depends only on the order they were queued, never on wall-clock time,
// so the same seed interleaves devices, source and clients the same way every run.
inline asio::awaitable<void> scheduler_hops(unsigned hops) {
  auto executor = co_await asio::this_coro::executor;
  for (unsigned i = 0; i < hops; ++i) co_await asio::post(executor, asio::use_awaitable);
}

}  // namespace hydrate::crash
