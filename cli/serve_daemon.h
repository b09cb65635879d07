#pragma once

#include <string>

#include "engine/io_threads.h"

namespace hydrate::cli {

// `hydrate serve --daemonize`, in the manner of nbdkit without -f: the process forks after its
// listeners are bound, the parent stays until the child says it is serving and then exits 0 —
// so when the command returns, clients can connect — or exits with the child's status if the
// child failed first. The child starts a new session, moves to "/", and at ready() drops the
// terminal: stdout goes to /dev/null and stderr to the log file (or /dev/null).
//
// Must run before any thread exists: fork() keeps only the calling thread.
class Daemon {
 public:
  // Returns in the child only. `threads` have their event loops re-armed for the new process.
  void detach(IoThreads& threads);
  // The child is serving: release the parent and detach from the terminal. `log_file` (may be
  // empty) receives stderr from now on. Throws std::runtime_error if it cannot be opened.
  void ready(const std::string& log_file);

  bool detached() const { return ready_fd_ >= 0; }

 private:
  int ready_fd_ = -1;
};

}  // namespace hydrate::cli
