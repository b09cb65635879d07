#pragma once

#include <asio/io_context.hpp>
#include <atomic>
#include <memory>
#include <thread>
#include <vector>

namespace hydrate {

// The process's event loops: one io_context per thread, so a connection and everything it
// awaits stay on one thread without locks, and work spreads over cores by handing each new
// connection (or source connection, or background task) the next loop round-robin.
class IoThreads {
 public:
  // `threads` = 0 picks the number of cores.
  explicit IoThreads(unsigned threads = 0);
  ~IoThreads();
  IoThreads(const IoThreads&) = delete;
  IoThreads& operator=(const IoThreads&) = delete;

  unsigned size() const { return static_cast<unsigned>(contexts_.size()); }
  asio::io_context& at(unsigned i) { return *contexts_[i]; }
  // Round-robin choice for new work.
  asio::io_context& next();

  // Starts the threads. run() keeps them busy until stop(); join() waits for them.
  void start();
  void stop();
  void join();

 private:
  std::vector<std::unique_ptr<asio::io_context>> contexts_;
  std::vector<std::unique_ptr<asio::executor_work_guard<asio::io_context::executor_type>>> guards_;
  std::vector<std::thread> threads_;
  std::atomic<unsigned> next_{0};
};

}  // namespace hydrate
