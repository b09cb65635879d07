#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

namespace hydrate::cli {

// Where `hydrate status` and `hydrate ctl` find the server: --control PATH, else the
// `control:` key of -c CONFIG, else $HYDRATE_CONTROL, else the default below.
inline constexpr const char* kDefaultControlSocket = "/run/hydrate/control.sock";

// One request/reply exchange on the control socket (a JSON object per line). Throws
// std::runtime_error with a one-line message naming the socket when the server cannot be
// reached or answers garbage.
nlohmann::json control_request(const std::string& socket_path, const nlohmann::json& request,
                               std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace hydrate::cli
