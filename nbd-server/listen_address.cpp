#include "nbd-server/listen_address.h"

#include <sys/un.h>

namespace hydrate::nbd {
namespace {

ParsedListenAddress refused(std::string problem) {
  return {std::nullopt, std::move(problem)};
}

ParsedListenAddress accepted(ListenAddress address) {
  return {std::move(address), {}};
}

// The port after ':'; empty optional with `problem` set when it is not one.
std::optional<uint16_t> parse_port(std::string_view text, std::string& problem) {
  if (text.empty()) {
    problem = "the port after ':' is empty";
    return std::nullopt;
  }
  uint32_t port = 0;
  for (char c : text) {
    if (c < '0' || c > '9') {
      problem = "port \"" + std::string(text) + "\" is not a number";
      return std::nullopt;
    }
    port = port * 10 + static_cast<uint32_t>(c - '0');
    if (port > 65535) {
      problem = "port " + std::string(text) + " is above 65535";
      return std::nullopt;
    }
  }
  return static_cast<uint16_t>(port);
}

ParsedListenAddress unix_address(std::string_view path) {
  // Accept the URL spelling unix:///path too.
  if (path.starts_with("//")) path.remove_prefix(2);
  if (path.empty()) return refused("the socket path is empty");
  if (path.size() >= sizeof(sockaddr_un::sun_path))
    return refused("the socket path is longer than the " +
                   std::to_string(sizeof(sockaddr_un::sun_path) - 1) +
                   " bytes a Unix socket address holds");
  ListenAddress a;
  a.kind = ListenAddress::Kind::unix_socket;
  a.path = std::string(path);
  return accepted(std::move(a));
}

ParsedListenAddress tcp_address(std::string_view rest) {
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  // A host name or address never holds '/': what follows one is a path, which NBD listeners
  // do not have (and a resolver would only fail on later, with a less useful message).
  if (size_t slash = rest.find('/'); slash != std::string_view::npos)
    return refused("unexpected \"" + std::string(rest.substr(slash)) +
                   "\" after the address; a listen address has no path");
  ListenAddress a;
  std::string problem;
  if (rest.starts_with("[")) {
    size_t close = rest.find(']');
    if (close == std::string_view::npos) return refused("'[' without a closing ']'");
    a.host = std::string(rest.substr(1, close - 1));
    if (a.host.empty()) return refused("the IPv6 address between brackets is empty");
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return refused("expected ':PORT' after ']'");
      std::optional<uint16_t> port = parse_port(after.substr(1), problem);
      if (!port) return refused(std::move(problem));
      a.port = *port;
    }
    return accepted(std::move(a));
  }
  size_t colon = rest.rfind(':');
  if (colon != std::string_view::npos && rest.find(':') != colon)
    return refused("an IPv6 address needs brackets, e.g. tcp://[::1]:10809");
  if (colon == std::string_view::npos) {
    a.host = std::string(rest);
    if (a.host.empty()) return refused("the host is empty (use tcp://*:PORT for every address)");
  } else {
    a.host = std::string(rest.substr(0, colon));
    std::optional<uint16_t> port = parse_port(rest.substr(colon + 1), problem);
    if (!port) return refused(std::move(problem));
    a.port = *port;
  }
  if (a.host == "*") a.host.clear();
  return accepted(std::move(a));
}

}  // namespace

ParsedListenAddress parse_listen_address(std::string_view uri) {
  if (uri.starts_with("unix:")) return unix_address(uri.substr(5));
  if (uri.starts_with("tcp://")) return tcp_address(uri.substr(6));
  return refused("unknown listen address form; expected " + std::string(kListenAddressForms));
}

}  // namespace hydrate::nbd
