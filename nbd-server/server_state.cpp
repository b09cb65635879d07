#include "nbd-server/server_state.h"

#include "nbd-server/connection.h"

namespace hydrate::nbd {

bool ServerState::admit(const std::shared_ptr<Connection>& connection) {
  std::lock_guard lock(mutex_);
  if (shutting_down.load() || connections_.size() >= settings.max_connections) return false;
  connections_.emplace(connection.get(), connection);
  return true;
}

void ServerState::remove(Connection* connection) {
  std::unique_lock lock(mutex_);
  connections_.erase(connection);
  maybe_idle(lock);
}

size_t ServerState::connection_count() const {
  std::lock_guard lock(mutex_);
  return connections_.size();
}

std::vector<std::shared_ptr<Connection>> ServerState::connections() const {
  std::lock_guard lock(mutex_);
  std::vector<std::shared_ptr<Connection>> out;
  for (auto& [_, weak] : connections_)
    if (auto c = weak.lock()) out.push_back(std::move(c));
  return out;
}

void ServerState::when_idle(std::function<void()> idle) {
  std::unique_lock lock(mutex_);
  idle_.push_back(std::move(idle));
  maybe_idle(lock);
}

void ServerState::maybe_idle(std::unique_lock<std::mutex>& lock) {
  if (idle_.empty() || !shutting_down.load() || !connections_.empty()) return;
  auto waiting = std::move(idle_);
  idle_.clear();
  lock.unlock();
  for (auto& idle : waiting) idle();
}

}  // namespace hydrate::nbd
