#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace hydrate::nbd {

// How the server listens, negotiates and encrypts. Plain values: filled in once (by the CLI or a
// test), then copied into ServerState and only read afterwards, from any thread. Kept apart from
// server.h so the parts that only read settings do not depend on the Server itself.

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

}  // namespace hydrate::nbd
