#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hydrate::nbd {

inline constexpr uint16_t kDefaultNbdPort = 10809;

// A parsed listen URI: "tcp://HOST:PORT", "tcp://HOST" (port 10809), "tcp://[IPv6]:PORT",
// "tcp://:PORT" or "tcp://*:PORT" (every address), "unix:/PATH" (also "unix:///PATH"). One
// trailing '/' after a TCP address is tolerated, as URL habits add it.
struct ListenAddress {
  enum class Kind { tcp, unix_socket };
  Kind kind = Kind::tcp;
  std::string host;  // without brackets; empty = every address
  uint16_t port = kDefaultNbdPort;
  std::string path;  // as written: a relative path is relative to the caller's directory
};

// The address, or why the text is not one. `problem` is a phrase without the URI ("the port
// after ':' is empty"), so each caller names the URI the way its own messages do.
struct ParsedListenAddress {
  std::optional<ListenAddress> address;
  std::string problem;  // empty exactly when `address` is set

  explicit operator bool() const { return address.has_value(); }
};

// The one grammar of listen addresses: the server binds what it returns, and the YAML
// configuration and `hydrate serve --listen` check their addresses with it, so nothing the
// configuration accepts fails at bind time for its form. Never throws.
ParsedListenAddress parse_listen_address(std::string_view uri);

// The accepted forms, for messages and usage texts.
inline constexpr std::string_view kListenAddressForms =
    "tcp://HOST[:PORT], tcp://[IPV6][:PORT] or unix:/PATH";

}  // namespace hydrate::nbd
