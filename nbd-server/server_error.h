#pragma once

#include <stdexcept>

namespace hydrate::nbd {

// A startup failure the user can fix (address in use, bad listen URI, bad TLS files). The
// message is one line and names what failed. Thrown only while the server starts (listen
// address parsing, binding, socket activation, TLS loading), never from a connection; its own
// header so those parts need not include server.h.
class ServerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace hydrate::nbd
