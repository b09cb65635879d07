#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace hydrate::nbd {

inline constexpr uint16_t kDefaultNbdPort = 10809;

// A parsed listen URI: "tcp://HOST:PORT", "tcp://HOST" (port 10809), "tcp://[IPv6]:PORT",
// "tcp://:PORT" or "tcp://*:PORT" (every address), "unix:/PATH".
struct ListenAddress {
  enum class Kind { tcp, unix_socket };
  Kind kind = Kind::tcp;
  std::string host;  // without brackets; empty = every address
  uint16_t port = kDefaultNbdPort;
  std::string path;
};

// Throws ServerError naming the URI and what is wrong with it.
ListenAddress parse_listen_address(std::string_view uri);

}  // namespace hydrate::nbd
