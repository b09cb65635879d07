#pragma once

#include <cerrno>
#include <string>
#include <utility>

namespace hydrate {

// Outcome of one I/O operation anywhere in the engine. `error` is an errno value (0 = success);
// `message` carries the context a log line or an NBD error chunk needs (export, offset, path).
// Failures are values, not exceptions: they are routine on the I/O paths (EIO from a source,
// ENOSPC on a destination) and must never unwind through the event loop.
struct IoResult {
  int error = 0;
  std::string message;

  bool ok() const { return error == 0; }
  explicit operator bool() const { return ok(); }

  static IoResult success() { return {}; }
  static IoResult failure(int err, std::string msg) { return IoResult{err, std::move(msg)}; }
};

}  // namespace hydrate
