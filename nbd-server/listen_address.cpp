#include "nbd-server/listen_address.h"

#include <sys/un.h>

#include "nbd-server/server.h"

namespace hydrate::nbd {

namespace {

[[noreturn]] void bad(std::string_view uri, const std::string& why) {
  throw ServerError("listen address \"" + std::string(uri) + "\": " + why);
}

uint16_t parse_port(std::string_view uri, std::string_view text) {
  if (text.empty()) bad(uri, "the port after ':' is empty");
  uint32_t port = 0;
  for (char c : text) {
    if (c < '0' || c > '9') bad(uri, "port \"" + std::string(text) + "\" is not a number");
    port = port * 10 + static_cast<uint32_t>(c - '0');
    if (port > 65535) bad(uri, "port " + std::string(text) + " is above 65535");
  }
  return static_cast<uint16_t>(port);
}

}  // namespace

ListenAddress parse_listen_address(std::string_view uri) {
  ListenAddress a;
  if (uri.starts_with("unix:")) {
    a.kind = ListenAddress::Kind::unix_socket;
    std::string_view path = uri.substr(5);
    // Accept the URL spelling unix:///path too.
    if (path.starts_with("//")) path.remove_prefix(2);
    if (path.empty()) bad(uri, "the socket path is empty");
    if (path.size() >= sizeof(sockaddr_un::sun_path))
      bad(uri, "the socket path is longer than the " +
                   std::to_string(sizeof(sockaddr_un::sun_path) - 1) +
                   " bytes a Unix socket address holds");
    a.path = std::string(path);
    return a;
  }
  if (!uri.starts_with("tcp://")) bad(uri, "expected tcp://HOST[:PORT] or unix:/PATH");
  std::string_view rest = uri.substr(6);
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.starts_with("[")) {
    size_t close = rest.find(']');
    if (close == std::string_view::npos) bad(uri, "'[' without a closing ']'");
    a.host = std::string(rest.substr(1, close - 1));
    if (a.host.empty()) bad(uri, "the IPv6 address between brackets is empty");
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') bad(uri, "expected ':PORT' after ']'");
      a.port = parse_port(uri, after.substr(1));
    }
    return a;
  }
  size_t colon = rest.rfind(':');
  if (colon != std::string_view::npos && rest.find(':') != colon)
    bad(uri, "an IPv6 address must be written in brackets, e.g. tcp://[::1]:10809");
  if (colon == std::string_view::npos) {
    a.host = std::string(rest);
    if (a.host.empty()) bad(uri, "the host is empty (use tcp://*:PORT for every address)");
  } else {
    a.host = std::string(rest.substr(0, colon));
    a.port = parse_port(uri, rest.substr(colon + 1));
  }
  if (a.host == "*") a.host.clear();
  return a;
}

}  // namespace hydrate::nbd
