#pragma once

#include <sys/types.h>

#include <asio/basic_socket_acceptor.hpp>
#include <asio/generic/stream_protocol.hpp>
#include <asio/io_context.hpp>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/io_threads.h"
#include "nbd-server/listen_address.h"

namespace hydrate::nbd {

// One listening socket and its accept loop. Accepted sockets are created directly on the
// next IoThreads context (round-robin), so a connection never hops threads after accept.
class Listener : public std::enable_shared_from_this<Listener> {
 public:
  using Socket = asio::generic::stream_protocol::socket;
  using AcceptHandler = std::function<void(Socket)>;

  // Binds every socket a listen address stands for (a host name or "every address" may give
  // several). Throws ServerError naming the address and the reason.
  static std::vector<std::shared_ptr<Listener>> bind(asio::io_context& context,
                                                     const ListenAddress& address);
  // Takes over a listening socket passed by socket activation. Throws ServerError.
  static std::shared_ptr<Listener> adopt(asio::io_context& context, int fd);

  ~Listener();

  // The bound address with its real port: "tcp://127.0.0.1:40123", "tcp://[::1]:10809",
  // "unix:/run/hydrate.sock".
  const std::string& address() const { return address_; }

  void start(IoThreads& threads, AcceptHandler on_accept);
  // Stops accepting and closes the socket (removing a Unix socket file this listener
  // created). Thread-safe; idempotent.
  void close();

 private:
  explicit Listener(asio::io_context& context);
  // `self` keeps the listener alive while the loop runs.
  asio::awaitable<void> accept_loop(std::shared_ptr<Listener> self, IoThreads& threads,
                                    AcceptHandler on_accept);
  void close_here();
  void remove_socket_file();

  asio::io_context& context_;
  asio::basic_socket_acceptor<asio::generic::stream_protocol> acceptor_;
  std::string address_;
  std::mutex path_mutex_;
  std::string unix_path_;  // set when this listener created the file
  dev_t unix_dev_ = 0;
  ino_t unix_ino_ = 0;
  bool closed_ = false;
};

// "tcp://1.2.3.4:5", "tcp://[::1]:5", "unix:/path" for a socket's local or peer address.
std::string describe_socket_address(const asio::generic::stream_protocol::endpoint& endpoint);

}  // namespace hydrate::nbd
