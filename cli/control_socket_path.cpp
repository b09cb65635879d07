#include "cli/control_socket_path.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <stdexcept>

#include "cli/control_client.h"

namespace hydrate::cli {

std::string resolve_control_socket(const std::string& control_flag,
                                   const std::string& config_path) {
  if (!control_flag.empty()) return control_flag;
  if (!config_path.empty()) {
    YAML::Node root;
    try {
      root = YAML::LoadFile(config_path);
    } catch (const YAML::Exception& e) {
      throw std::runtime_error(config_path + ": " + e.what());
    }
    YAML::Node control = root["control"];
    if (!control || !control.IsScalar())
      throw std::runtime_error(config_path + ": no `control:` socket path in this configuration");
    return control.as<std::string>();
  }
  if (const char* env = std::getenv("HYDRATE_CONTROL"); env && *env) return env;
  return kDefaultControlSocket;
}

}  // namespace hydrate::cli
