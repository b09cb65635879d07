#include "nbd-server/listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ip/v6_only.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <cerrno>
#include <cstring>

#include "engine/log.h"
#include "nbd-server/server_error.h"

namespace hydrate::nbd {

namespace {

using Endpoint = asio::generic::stream_protocol::endpoint;

std::string tcp_uri(const asio::ip::tcp::endpoint& ep) {
  if (ep.address().is_v6())
    return "tcp://[" + ep.address().to_string() + "]:" + std::to_string(ep.port());
  return "tcp://" + ep.address().to_string() + ":" + std::to_string(ep.port());
}

// Is something accepting connections on this Unix socket path?
bool unix_socket_in_use(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  bool in_use = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return in_use;
}

}  // namespace

std::string describe_socket_address(const Endpoint& endpoint) {
  const sockaddr* sa = endpoint.data();
  char text[INET6_ADDRSTRLEN] = {};
  switch (sa->sa_family) {
    case AF_INET: {
      auto* in = reinterpret_cast<const sockaddr_in*>(sa);
      ::inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
      return "tcp://" + std::string(text) + ":" + std::to_string(ntohs(in->sin_port));
    }
    case AF_INET6: {
      auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
      ::inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
      return "tcp://[" + std::string(text) + "]:" + std::to_string(ntohs(in6->sin6_port));
    }
    case AF_UNIX: {
      auto* un = reinterpret_cast<const sockaddr_un*>(sa);
      size_t length = endpoint.size() > offsetof(sockaddr_un, sun_path)
                          ? endpoint.size() - offsetof(sockaddr_un, sun_path)
                          : 0;
      if (length == 0) return "unix:";
      if (un->sun_path[0] == '\0') return "unix:@" + std::string(un->sun_path + 1, length - 1);
      return "unix:" + std::string(un->sun_path, strnlen(un->sun_path, length));
    }
  }
  return "family-" + std::to_string(sa->sa_family);
}

Listener::Listener(asio::io_context& context) : context_(context), acceptor_(context) {}

Listener::~Listener() {
  close_here();
}

std::vector<std::shared_ptr<Listener>> Listener::bind(asio::io_context& context,
                                                      const ListenAddress& address) {
  std::vector<std::shared_ptr<Listener>> out;
  if (address.kind == ListenAddress::Kind::unix_socket) {
    const std::string& path = address.path;
    const std::string uri = "unix:" + path;
    struct stat st;
    if (::lstat(path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode))
        throw ServerError(uri + ": the path exists and is not a socket; refusing to replace it");
      if (unix_socket_in_use(path))
        throw ServerError(uri + ": another server is listening on this socket");
      // A socket file nobody listens on is left over from a server that died: replace it.
      if (::unlink(path.c_str()) != 0 && errno != ENOENT)
        throw ServerError(uri + ": cannot remove the stale socket file: " + std::strerror(errno));
      log::info("nbd.stale_socket_removed", {{"path", path}});
    }
    std::shared_ptr<Listener> l(new Listener(context));
    std::error_code ec;
    asio::local::stream_protocol::endpoint local(path);
    Endpoint ep(local);
    l->acceptor_.open(ep.protocol(), ec);
    if (!ec) l->acceptor_.bind(ep, ec);
    if (ec) throw ServerError(uri + ": cannot bind: " + ec.message());
    if (::lstat(path.c_str(), &st) == 0) {
      l->unix_path_ = path;
      l->unix_dev_ = st.st_dev;
      l->unix_ino_ = st.st_ino;
    }
    l->acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) throw ServerError(uri + ": cannot listen: " + ec.message());
    l->address_ = uri;
    out.push_back(std::move(l));
    return out;
  }

  std::vector<asio::ip::tcp::endpoint> endpoints;
  bool every_address = address.host.empty();
  if (every_address) {
    endpoints.emplace_back(asio::ip::address_v4::any(), address.port);
    endpoints.emplace_back(asio::ip::address_v6::any(), address.port);
  } else {
    std::error_code ec;
    auto literal = asio::ip::make_address(address.host, ec);
    if (!ec) {
      endpoints.emplace_back(literal, address.port);
    } else {
      asio::ip::tcp::resolver resolver(context);
      auto results = resolver.resolve(
          address.host, std::to_string(address.port),
          asio::ip::resolver_base::passive | asio::ip::resolver_base::numeric_service, ec);
      if (ec)
        throw ServerError("tcp://" + address.host + ": cannot resolve the host: " + ec.message());
      for (const auto& r : results)
        if (std::find(endpoints.begin(), endpoints.end(), r.endpoint()) == endpoints.end())
          endpoints.push_back(r.endpoint());
    }
  }
  for (const auto& tcp : endpoints) {
    std::shared_ptr<Listener> l(new Listener(context));
    std::error_code ec;
    Endpoint ep(tcp);
    l->acceptor_.open(ep.protocol(), ec);
    if (!ec) l->acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec && tcp.address().is_v6()) l->acceptor_.set_option(asio::ip::v6_only(true), ec);
    if (!ec) l->acceptor_.bind(ep, ec);
    if (!ec) l->acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      // "Every address" on a host without IPv6 still works on IPv4.
      if (every_address && tcp.address().is_v6() && !out.empty()) continue;
      throw ServerError(tcp_uri(tcp) + ": cannot listen: " + ec.message());
    }
    l->address_ = describe_socket_address(l->acceptor_.local_endpoint());
    out.push_back(std::move(l));
  }
  return out;
}

std::shared_ptr<Listener> Listener::adopt(asio::io_context& context, int fd) {
  sockaddr_storage storage{};
  socklen_t length = sizeof storage;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length) != 0)
    throw ServerError("socket activation: descriptor " + std::to_string(fd) +
                      " is not a socket: " + std::strerror(errno));
  int type = 0;
  socklen_t type_length = sizeof type;
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &type_length) != 0 || type != SOCK_STREAM)
    throw ServerError("socket activation: descriptor " + std::to_string(fd) +
                      " is not a stream socket");
  std::shared_ptr<Listener> l(new Listener(context));
  std::error_code ec;
  l->acceptor_.assign(asio::generic::stream_protocol(storage.ss_family, 0), fd, ec);
  if (ec)
    throw ServerError("socket activation: cannot use descriptor " + std::to_string(fd) + ": " +
                      ec.message());
  Endpoint ep;
  std::memcpy(ep.data(), &storage, length);
  ep.resize(length);
  l->address_ = describe_socket_address(ep);
  return l;
}

void Listener::start(IoThreads& threads, AcceptHandler on_accept) {
  asio::co_spawn(context_, accept_loop(shared_from_this(), threads, std::move(on_accept)),
                 asio::detached);
}

asio::awaitable<void> Listener::accept_loop(std::shared_ptr<Listener> self, IoThreads& threads,
                                            AcceptHandler on_accept) {
  (void)self;
  for (;;) {
    std::error_code ec;
    asio::any_io_executor target = threads.next().get_executor();
    Socket socket =
        co_await acceptor_.async_accept(target, asio::redirect_error(asio::use_awaitable, ec));
    if (closed_ || ec == asio::error::operation_aborted) break;
    if (ec) {
      log::warn("nbd.accept_failed", {{"listener", address_}, {"error", ec.message()}});
      // Out of descriptors or memory: back off instead of spinning on the same error.
      asio::steady_timer pause(context_, std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    on_accept(std::move(socket));
  }
}

void Listener::close() {
  // The socket file goes now (the caller may be about to exit); the acceptor is closed on its
  // own thread, where the accept loop runs.
  remove_socket_file();
  asio::post(context_, [self = shared_from_this()] { self->close_here(); });
}

void Listener::close_here() {
  closed_ = true;
  std::error_code ignored;
  acceptor_.close(ignored);
  remove_socket_file();
}

void Listener::remove_socket_file() {
  std::lock_guard lock(path_mutex_);
  if (unix_path_.empty()) return;
  // Only the file this listener created: another server may have replaced it meanwhile.
  struct stat st;
  if (::lstat(unix_path_.c_str(), &st) == 0 && st.st_dev == unix_dev_ && st.st_ino == unix_ino_)
    ::unlink(unix_path_.c_str());
  unix_path_.clear();
}

}  // namespace hydrate::nbd
