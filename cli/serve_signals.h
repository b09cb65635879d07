#pragma once

#include <chrono>
#include <optional>

namespace hydrate::cli {

// Turns SIGTERM, SIGINT and SIGHUP into events the main thread waits for, so no signal handler
// ever runs inside the event loops. Construct it before any thread starts: the signals are
// blocked in the calling thread and every thread created afterwards inherits that.
class ServeSignals {
 public:
  ServeSignals();
  ~ServeSignals();
  ServeSignals(const ServeSignals&) = delete;
  ServeSignals& operator=(const ServeSignals&) = delete;

  // Safe from any thread: wakes wait() with no signal (used when shutdown has finished).
  void notify_done();

  // Blocks until a signal arrives (its number) or notify_done() was called (nullopt).
  std::optional<int> wait();

 private:
  int signal_fd_ = -1;
  int done_fd_ = -1;
};

}  // namespace hydrate::cli
