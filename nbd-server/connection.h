#pragma once

#include <asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "nbd-server/receive_buffer.h"
#include "nbd-server/server_state.h"
#include "nbd-server/transport.h"

namespace hydrate::nbd {

class Transmission;

// One client connection from accept to close: the handshake under a deadline, then the
// transmission phase, then an orderly close and a log line with what happened. Lives on its
// transport's executor; begin_shutdown() and abort() may be called from any thread.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::shared_ptr<ServerState> state, std::unique_ptr<Transport> transport,
             std::string peer);
  ~Connection();

  // Starts serving on the transport's executor. The connection removes itself from
  // state->remove() when it is done.
  void start();
  void begin_shutdown();
  void abort();

  const std::string& peer() const { return peer_; }

 private:
  enum class Phase { handshake, transmission, closed };

  asio::awaitable<void> run(std::shared_ptr<Connection> self);
  void arm_handshake_deadline(std::chrono::steady_clock::time_point deadline);
  void shutdown_here();

  std::shared_ptr<ServerState> state_;
  std::unique_ptr<Transport> transport_;
  asio::any_io_executor executor_;
  std::string peer_;
  ReceiveBuffer in_;
  asio::steady_timer handshake_timer_;
  std::chrono::steady_clock::time_point handshake_deadline_;
  bool handshake_timed_out_ = false;
  Phase phase_ = Phase::handshake;
  Transmission* transmission_ = nullptr;
};

}  // namespace hydrate::nbd
