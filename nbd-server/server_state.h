#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "nbd-server/export_table.h"
#include "nbd-server/server_settings.h"

namespace hydrate::nbd {

class Connection;
class TlsContext;

// What the server shares with its connections: settings, exports, TLS credentials, the
// shutdown flag and the set of live connections. Connections hold it by shared_ptr, so it
// outlives a Server destroyed while they are still closing.
class ServerState {
 public:
  explicit ServerState(ServerSettings settings) : settings(std::move(settings)) {}

  const ServerSettings settings;
  ExportTable exports;
  std::shared_ptr<TlsContext> tls;  // null when TLS is off
  std::atomic<bool> shutting_down{false};

  // Registers a new connection unless max_connections are already open.
  bool admit(const std::shared_ptr<Connection>& connection);
  void remove(Connection* connection);
  size_t connection_count() const;
  uint64_t next_connection_number() { return ++connections_accepted_; }
  std::vector<std::shared_ptr<Connection>> connections() const;
  // Runs `idle` once, as soon as shutting_down is set and no connection is left (right away
  // if that is already the case). Several waiters (repeated shutdowns) all run.
  void when_idle(std::function<void()> idle);

 private:
  void maybe_idle(std::unique_lock<std::mutex>& lock);
  mutable std::mutex mutex_;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> connections_;
  std::vector<std::function<void()>> idle_;
  std::atomic<uint64_t> connections_accepted_{0};
};

}  // namespace hydrate::nbd
