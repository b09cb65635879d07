#include "nbd-server/connection.h"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>

#include "engine/log.h"
#include "nbd-server/handshake.h"
#include "nbd-server/transmission.h"

namespace hydrate::nbd {

namespace {
// Clients still haggling when the server shuts down get this long (at most) to finish; they
// are answered NBD_REP_ERR_SHUTDOWN meanwhile.
constexpr std::chrono::seconds kShutdownHandshakeGrace{5};
}  // namespace

Connection::Connection(std::shared_ptr<ServerState> state, std::unique_ptr<Transport> transport,
                       std::string peer)
    : state_(std::move(state)),
      transport_(std::move(transport)),
      executor_(transport_->executor()),
      peer_(std::move(peer)),
      handshake_timer_(executor_) {}

Connection::~Connection() = default;

void Connection::start() {
  asio::co_spawn(executor_, run(shared_from_this()), asio::detached);
}

void Connection::begin_shutdown() {
  asio::post(executor_, [self = shared_from_this()] { self->shutdown_here(); });
}

void Connection::abort() {
  asio::post(executor_, [self = shared_from_this()] {
    if (self->phase_ != Phase::closed) self->transport_->close();
  });
}

void Connection::shutdown_here() {
  if (phase_ == Phase::handshake) {
    auto grace = std::min<std::chrono::steady_clock::duration>(kShutdownHandshakeGrace,
                                                               state_->settings.handshake_timeout);
    auto deadline = std::chrono::steady_clock::now() + grace;
    if (deadline < handshake_deadline_) arm_handshake_deadline(deadline);
  } else if (phase_ == Phase::transmission && transmission_) {
    transmission_->begin_shutdown();
  }
}

void Connection::arm_handshake_deadline(std::chrono::steady_clock::time_point deadline) {
  handshake_deadline_ = deadline;
  handshake_timer_.expires_at(deadline);
  handshake_timer_.async_wait([self = shared_from_this()](std::error_code ec) {
    if (ec || self->phase_ != Phase::handshake) return;
    if (std::chrono::steady_clock::now() < self->handshake_deadline_) return;
    self->handshake_timed_out_ = true;
    self->transport_->close();
  });
}

asio::awaitable<void> Connection::run(std::shared_ptr<Connection> self) {
  (void)self;  // held so the connection outlives its coroutine
  const auto started = std::chrono::steady_clock::now();
  log::info("nbd.connection_open", {{"peer", peer_}});
  arm_handshake_deadline(started + state_->settings.handshake_timeout);
  // A shutdown that began before this connection was registered would never reach it.
  if (state_->shutting_down.load()) shutdown_here();

  std::string export_name;
  std::string end;
  uint64_t requests = 0;
  bool tls = false;
  try {
    Handshake handshake(*state_, transport_, in_);
    auto session = co_await handshake.run();
    handshake_timer_.cancel();
    export_name = handshake.export_name();
    if (!session) {
      if (handshake_timed_out_) {
        end = "handshake timed out after " + std::to_string(handshake.options()) + " options";
        log::warn("nbd.handshake_failed", {{"peer", peer_}, {"why", end}});
      } else if (handshake.ended_by_client()) {
        end = handshake.failure();
      } else {
        end = handshake.failure();
        log::warn("nbd.handshake_failed", {{"peer", peer_}, {"why", end}});
      }
    } else {
      tls = transport_->encrypted();
      phase_ = Phase::transmission;
      log::info("nbd.connection_ready", {{"peer", peer_},
                                         {"export", export_name},
                                         {"structured_replies", session->structured_replies},
                                         {"meta_contexts", session->meta_contexts.size()},
                                         {"tls", tls}});
      Transmission transmission(*transport_, in_, std::move(*session), peer_);
      transmission_ = &transmission;
      if (state_->shutting_down.load()) transmission.begin_shutdown();
      co_await transmission.run();
      transmission_ = nullptr;
      requests = transmission.requests();
      end = transmission.end_reason();
    }
  } catch (const std::exception& e) {
    end = std::string("internal error: ") + e.what();
    log::error("nbd.connection_error", {{"peer", peer_}, {"why", end}});
  }
  phase_ = Phase::closed;
  handshake_timer_.cancel();
  co_await transport_->finish();
  auto duration = std::chrono::duration<double>(std::chrono::steady_clock::now() - started);
  log::info("nbd.connection_closed", {{"peer", peer_},
                                      {"export", export_name},
                                      {"duration_s", duration.count()},
                                      {"requests", requests},
                                      {"tls", tls},
                                      {"end", end}});
  state_->remove(this);
}

}  // namespace hydrate::nbd
