#include "nbd-server/server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asio/co_spawn.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <cerrno>
#include <cstring>
#include <exception>

#include "engine/log.h"
#include "nbd-server/connection.h"
#include "nbd-server/listen_address.h"
#include "nbd-server/listener.h"
#include "nbd-server/server_state.h"
#include "nbd-server/socket_activation.h"
#include "nbd-server/socket_transport.h"
#include "nbd-server/tls_context.h"

namespace hydrate::nbd {

struct Server::Impl {
  IoThreads& threads;
  std::shared_ptr<ServerState> state;
  std::mutex mutex;
  std::vector<std::shared_ptr<Listener>> listeners;
  std::vector<std::string> addresses;
  bool started = false;
  bool shutdown_requested = false;

  Impl(IoThreads& t, ServerSettings settings)
      : threads(t), state(std::make_shared<ServerState>(std::move(settings))) {}

  void accept(Listener::Socket socket) { serve_socket(state, std::move(socket)); }

  static void serve_socket(const std::shared_ptr<ServerState>& state, Listener::Socket socket) {
    std::error_code ec;
    std::string peer = describe_socket_address(socket.remote_endpoint(ec));
    if (ec) peer = "unknown";
    auto local = socket.local_endpoint(ec);
    int family = ec ? AF_UNSPEC : local.data()->sa_family;
    // Unix clients are unnamed: say which socket they came in on, and number every connection
    // so its log lines can be told apart.
    if (family == AF_UNIX && peer == "unix:") peer = describe_socket_address(local);
    peer += "#" + std::to_string(state->next_connection_number());
    if (family == AF_INET || family == AF_INET6) {
      // Replies are small and latency-bound; the writer already batches them.
      socket.set_option(asio::ip::tcp::no_delay(true), ec);
    }
    auto connection = std::make_shared<Connection>(
        state, std::make_unique<SocketTransport>(std::move(socket)), peer);
    if (!state->admit(connection)) {
      log::warn("nbd.connection_refused",
                {{"peer", peer},
                 {"why", state->shutting_down.load()
                             ? std::string("server is shutting down")
                             : "max_connections (" +
                                   std::to_string(state->settings.max_connections) + ") reached"}});
      return;  // the socket closes with the connection object
    }
    connection->start();
  }
};

Server::Server(IoThreads& threads, ServerSettings settings)
    : impl_(std::make_unique<Impl>(threads, std::move(settings))) {}

Server::~Server() {
  auto& state = impl_->state;
  state->shutting_down = true;
  for (auto& l : impl_->listeners) l->close();
  for (auto& c : state->connections()) c->abort();
}

void Server::add_export(std::shared_ptr<Export> export_, bool is_default) {
  if (!export_) throw ServerError("add_export: null export");
  impl_->state->exports.add(std::move(export_), is_default);
}

void Server::start() {
  std::lock_guard lock(impl_->mutex);
  if (impl_->started) throw ServerError("the server was already started");
  auto& state = *impl_->state;
  const ServerSettings& settings = state.settings;
  if (settings.max_connections == 0) throw ServerError("max_connections must be at least 1");
  if (settings.handshake_timeout.count() <= 0)
    throw ServerError("handshake_timeout must be positive");
  if (settings.tls.mode != TlsSettings::Mode::off) state.tls = TlsContext::load(settings.tls);

  std::vector<std::shared_ptr<Listener>> listeners;
  std::vector<int> connected;  // activated sockets that are connections, not listeners
  for (const std::string& uri : settings.listen) {
    ParsedListenAddress parsed = parse_listen_address(uri);
    if (!parsed) throw ServerError("listen address \"" + uri + "\": " + parsed.problem);
    for (auto& l : Listener::bind(impl_->threads.next(), *parsed.address))
      listeners.push_back(std::move(l));
  }
  if (settings.socket_activation) {
    for (int fd : take_activated_sockets()) {
      int listening = 0;
      socklen_t length = sizeof listening;
      if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) == 0 && !listening) {
        connected.push_back(fd);
        continue;
      }
      listeners.push_back(Listener::adopt(impl_->threads.next(), fd));
    }
  }
  if (listeners.empty() && connected.empty())
    throw ServerError(
        "nothing to listen on: no listen address is configured and no socket was passed by "
        "socket activation");

  impl_->listeners = listeners;
  Impl* impl = impl_.get();
  for (auto& l : listeners) {
    impl->addresses.push_back(l->address());
    log::info("nbd.listening", {{"address", l->address()}});
    l->start(impl->threads, [state = impl->state](Listener::Socket s) {
      Impl::serve_socket(state, std::move(s));
    });
  }
  for (int fd : connected) {
    sockaddr_storage storage{};
    socklen_t length = sizeof storage;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length);
    asio::io_context& context = impl->threads.next();
    Listener::Socket socket(context);
    std::error_code ec;
    socket.assign(asio::generic::stream_protocol(storage.ss_family, 0), fd, ec);
    if (ec) {
      ::close(fd);
      throw ServerError("socket activation: cannot use descriptor " + std::to_string(fd) + ": " +
                        ec.message());
    }
    impl->addresses.push_back("fd:" + std::to_string(fd));
    Impl::serve_socket(impl->state, std::move(socket));
  }
  impl_->started = true;
}

std::vector<std::string> Server::bound_addresses() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->addresses;
}

void Server::shutdown(std::function<void()> done) {
  std::vector<std::shared_ptr<Listener>> listeners;
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->shutdown_requested) {
      log::info("nbd.shutdown_repeated");
    }
    impl_->shutdown_requested = true;
    listeners = impl_->listeners;
  }
  auto state = impl_->state;
  state->shutting_down = true;
  log::info("nbd.shutdown_started", {{"connections", state->connection_count()}});
  for (auto& l : listeners) l->close();
  for (auto& c : state->connections()) c->begin_shutdown();

  IoThreads& threads = impl_->threads;
  state->when_idle([state, &threads, done = std::move(done)]() mutable {
    // Every connection is closed: make what they wrote durable, then report.
    asio::co_spawn(
        threads.next(),
        [state]() -> asio::awaitable<void> {
          for (auto& e : state->exports.all()) {
            IoResult r = co_await e->flush();
            if (!r)
              log::error("nbd.shutdown_flush_failed",
                         {{"export", e->info().name}, {"error", r.error}, {"why", r.message}});
          }
        },
        [state, done = std::move(done)](std::exception_ptr error) {
          if (error) {
            try {
              std::rethrow_exception(error);
            } catch (const std::exception& e) {
              log::error("nbd.shutdown_flush_failed", {{"why", e.what()}});
            }
          }
          log::info("nbd.shutdown_complete");
          if (done) done();
        });
  });
}

size_t Server::connection_count() const {
  return impl_->state->connection_count();
}

}  // namespace hydrate::nbd
