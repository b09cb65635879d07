#include "engine/task_group.h"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>

#include "engine/log.h"

namespace hydrate {

TaskGroup::TaskGroup(asio::any_io_executor executor)
    : executor_(std::move(executor)), state_(std::make_shared<State>()) {}

TaskGroup::~TaskGroup() = default;

void TaskGroup::spawn(asio::awaitable<void> task) {
  {
    std::lock_guard lock(state_->mutex);
    if (state_->running.fetch_add(1) == 0) state_->idle = std::make_shared<AsyncEvent>();
  }
  asio::co_spawn(executor_, run_one(std::move(task), state_), asio::detached);
}

asio::awaitable<void> TaskGroup::run_one(asio::awaitable<void> task,
                                         std::shared_ptr<State> state) {
  try {
    co_await std::move(task);
  } catch (const std::exception& e) {
    // Tasks report failures through their own results; an exception here is a bug, but it
    // must not leave wait() hanging forever.
    log::error("task.exception", {{"what", e.what()}});
  }
  std::shared_ptr<AsyncEvent> idle;
  {
    std::lock_guard lock(state->mutex);
    if (state->running.fetch_sub(1) == 1) idle = state->idle;
  }
  if (idle) idle->set();
}

asio::awaitable<void> TaskGroup::wait() {
  std::shared_ptr<AsyncEvent> idle;
  {
    std::lock_guard lock(state_->mutex);
    if (state_->running.load() == 0) co_return;
    idle = state_->idle;
  }
  co_await idle->async_wait(asio::use_awaitable);
}

size_t TaskGroup::running() const { return state_->running.load(); }

}  // namespace hydrate
