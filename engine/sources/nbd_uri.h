#pragma once

#include <string>
#include <string_view>

#include "engine/io_result.h"

namespace hydrate {

// An NBD URI as hydrate accepts it for a source (the NBD URI standard, nbd/doc/uri.md):
//   nbd://HOST[:PORT]/EXPORT      nbds://[USER@]HOST[:PORT]/EXPORT?tls-psk-file=…
//   nbd+unix:///EXPORT?socket=PATH   nbds+unix://[USER@]/EXPORT?socket=PATH&tls-…
// libnbd connects with the full text; this class checks the text first, so a typo fails at
// startup with a message naming the URI, and derives the source identity without secrets.
struct NbdUri {
  std::string text;    // exactly what was configured; what libnbd connects to
  std::string scheme;  // nbd, nbds, nbd+unix or nbds+unix
  bool tls = false;
  bool unix_socket = false;
  std::string host;         // TCP only; IPv6 addresses keep their brackets
  std::string port;         // TCP only; empty = the NBD default 10809
  std::string export_name;  // as written (percent-encoded), without the leading '/'
  std::string socket_path;  // Unix only, decoded

  // Fills `out` or explains what is wrong, naming the URI.
  static IoResult parse(std::string_view text, NbdUri& out);

  // What the clone's metadata records (invariant I7): scheme, host, port, export and socket —
  // never user names or key files, which may change without the data changing.
  std::string identity() const;
};

}  // namespace hydrate
