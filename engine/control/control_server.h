#pragma once

#include <asio/io_context.hpp>
#include <memory>
#include <string>

#include "engine/control/control_registry.h"

namespace hydrate {

// The operator's control socket: a Unix stream socket speaking one JSON object per line.
//   {"command":"status"}                             -> {"ok":true,"exports":[…]}
//   {"command":"status","export":"vm1"}              -> {"ok":true,"exports":[{…}]}
//   {"command":"pause"|"resume","export":"vm1"}      -> {"ok":true,"export":{…status…}}
//   {"command":"set","export":"vm1","settings":{"rate":N,"batch":N,"max_inflight":N}}
// Errors: {"ok":false,"error":"…"} naming what was wrong. docs/operations.md has the details.
// The socket is created mode 0600: pausing hydration is an operator's business.
class ControlServer {
 public:
  ControlServer(asio::io_context& context, std::shared_ptr<ControlRegistry> registry);
  ~ControlServer();

  // Binds `path` (creating its directory; replacing a stale socket nobody listens on).
  // Throws std::runtime_error with a one-line message on failure.
  void start(const std::string& path);
  void stop();

  // Handles one request (exposed for tests and the nbdkit plugin).
  static std::string handle(ControlRegistry& registry, const std::string& request_line);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;  // shared with the accept loop, which may outlive stop()
};

}  // namespace hydrate
