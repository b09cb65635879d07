#include "cli/control_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace hydrate::cli {
namespace {

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error("control socket " + path + ": " + what);
}

}  // namespace

nlohmann::json control_request(const std::string& path, const nlohmann::json& request,
                               std::chrono::milliseconds timeout) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof(address.sun_path)) fail(path, "path is too long for a Unix socket");
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  Fd s;
  s.fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s.fd < 0) fail(path, std::strerror(errno));
  if (::connect(s.fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    int e = errno;
    if (e == ENOENT || e == ECONNREFUSED)
      fail(path, std::string(std::strerror(e)) + " (is `hydrate serve` running with this control socket?)");
    fail(path, std::strerror(e));
  }
  std::string line = request.dump() + "\n";
  for (size_t sent = 0; sent < line.size();) {
    ssize_t n = ::send(s.fd, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(path, std::string("sending the request: ") + std::strerror(errno));
    sent += static_cast<size_t>(n);
  }
  std::string reply;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buffer[65536];
  while (reply.find('\n') == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) fail(path, "no reply within " + std::to_string(timeout.count()) + " ms");
    pollfd p{s.fd, POLLIN, 0};
    int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    ssize_t n = ::recv(s.fd, buffer, sizeof buffer, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(path, std::string("reading the reply: ") + std::strerror(errno));
    if (n == 0) fail(path, "the server closed the connection without replying");
    reply.append(buffer, static_cast<size_t>(n));
    if (reply.size() > (16u << 20)) fail(path, "reply too large");
  }
  try {
    return nlohmann::json::parse(reply.substr(0, reply.find('\n')));
  } catch (const nlohmann::json::exception& e) {
    fail(path, std::string("reply is not JSON: ") + e.what());
  }
}

}  // namespace hydrate::cli
