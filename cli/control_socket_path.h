#pragma once

#include <string>

namespace hydrate::cli {

// --control PATH wins; then the `control:` key of the config file given with -c; then
// $HYDRATE_CONTROL; then kDefaultControlSocket. Throws with a one-line message when the config
// cannot be read or has no `control:` key.
std::string resolve_control_socket(const std::string& control_flag, const std::string& config_path);

}  // namespace hydrate::cli
