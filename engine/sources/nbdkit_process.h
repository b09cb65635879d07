#pragma once

#include <sys/types.h>

#include <asio/awaitable.hpp>
#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include "engine/io_result.h"

namespace hydrate {

// nbdkit run as a child process, serving on a Unix socket in a directory the caller owns:
//   nbdkit -U DIR/nbdkit.sock -f --exit-with-parent ARGS…   (output appended to DIR/nbdkit.log)
// so that any nbdkit plugin (curl, ssh, vddk, …) can be a clone's source, with multi-conn
// over one process. ensure_running() starts it again after it died; that is how a source
// backed by it recovers (its connections call it before every reconnect attempt).
//
// nbdkit's --exit-with-parent follows the thread that started it: start it from a thread that
// lives as long as the source (the main thread or an IoThreads loop).
class NbdkitProcess {
 public:
  NbdkitProcess(std::vector<std::string> args, std::string directory);
  ~NbdkitProcess();  // stop()
  NbdkitProcess(const NbdkitProcess&) = delete;
  NbdkitProcess& operator=(const NbdkitProcess&) = delete;

  // Refuses arguments that would take the listener away from hydrate (-p, -U, --run, …).
  static IoResult check_args(const std::vector<std::string>& args);
  // The arguments joined by spaces for logs and the source identity, with the values of
  // password=, secret= and token= parameters replaced by "***": they are credentials, not
  // what the data is, and must not end up in logs or in the clone's metadata.
  static std::string describe(const std::vector<std::string>& args);

  const std::vector<std::string>& args() const { return args_; }
  const std::string& socket_path() const { return socket_path_; }
  const std::string& log_path() const { return log_path_; }
  std::string uri() const { return "nbd+unix:///?socket=" + socket_path_; }

  // Starts nbdkit unless it is running; if it exited, reaps it and starts it again.
  // Thread-safe; does not wait for the socket.
  IoResult ensure_running();
  // Completes when the socket accepts connections; fails when nbdkit exits first (with its
  // exit status and the end of its log) or after `timeout`.
  asio::awaitable<IoResult> wait_listening(std::chrono::milliseconds timeout);
  // SIGTERM, SIGKILL after a grace period, reap. Blocks for at most the grace period.
  // Final: ensure_running() refuses afterwards, so a connection still reconnecting cannot
  // bring nbdkit back behind its owner's back.
  void stop();

  // Whether nbdkit runs now (reaps it if it exited).
  bool running();
  pid_t pid() const;
  // How many times nbdkit was started: 1 + restarts.
  unsigned starts() const;

 private:
  IoResult spawn_locked();
  // Reaps the child if it exited; true while it runs.
  bool running_locked();
  std::string exit_description_locked() const;
  std::string log_tail() const;

  const std::vector<std::string> args_;
  const std::string socket_path_;
  const std::string log_path_;

  mutable std::mutex mutex_;
  pid_t pid_ = -1;
  int exit_status_ = 0;  // waitpid status of the last child that exited
  bool exited_ = false;
  bool stopped_ = false;
  unsigned starts_ = 0;
};

}  // namespace hydrate
