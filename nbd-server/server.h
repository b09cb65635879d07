#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/export.h"
#include "engine/io_threads.h"

namespace hydrate::nbd {

struct TlsSettings {
  enum class Mode { off, on, require };
  Mode mode = Mode::off;
  // x509: a directory holding ca-cert.pem, server-cert.pem, server-key.pem (nbdkit/qemu layout).
  std::string certificates_dir;
  // PSK: a file of `username:hexkey` lines (nbdkit --tls-psk / psktool format).
  std::string psk_file;
  bool verify_peer = false;
};

struct ServerSettings {
  // "tcp://HOST:PORT" (PORT 0 picks a free one), "tcp://HOST" (port 10809), "unix:/PATH".
  std::vector<std::string> listen;
  // Accept sockets passed by systemd / `nbdinfo -- [ … ]` (LISTEN_FDS, LISTEN_PID).
  bool socket_activation = true;
  std::chrono::milliseconds handshake_timeout{30'000};
  unsigned max_connections = 1024;
  TlsSettings tls;
};

// A startup failure the user can fix (address in use, bad listen URI, bad TLS files). The
// message is one line and names what failed.
class ServerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

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
