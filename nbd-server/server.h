#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/export.h"
#include "engine/io_threads.h"
#include "nbd-server/server_error.h"
#include "nbd-server/server_settings.h"

namespace hydrate::nbd {

// The NBD server (DESIGN.md §7). Connections are spread over `threads`; each request is a
// coroutine calling the connection's Export.
class Server {
 public:
  Server(IoThreads& threads, ServerSettings settings);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Exports are looked up by ExportInfo::name. The default export answers the empty name; if
  // none is marked default and there is exactly one export, that one is.
  void add_export(std::shared_ptr<Export> export_, bool is_default = false);

  // Binds every listener (or adopts activated sockets) and starts accepting. Throws
  // ServerError. After start(), bound_addresses() lists what was bound, with real ports.
  void start();
  std::vector<std::string> bound_addresses() const;

  // Graceful stop: close listeners, refuse new options with NBD_REP_ERR_SHUTDOWN, let every
  // request already received complete and its reply be sent, then close connections and flush
  // every export. `done` runs (on some I/O thread) once all of that has finished.
  void shutdown(std::function<void()> done);

  size_t connection_count() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hydrate::nbd
