#include "config/command_line_export.h"

#include <filesystem>

namespace hydrate::config {

ExportConfig parse_export_argument(std::string_view argument) {
  auto refuse = [&](const std::string& why) -> ExportConfig {
    throw ConfigError("--export '" + std::string(argument) + "': " + why +
                      "; expected NAME=PATH, NAME=PATH:ro or NAME=PATH:rw");
  };
  size_t equals = argument.find('=');
  if (equals == std::string_view::npos) return refuse("no '=' between name and path");
  ExportConfig e;
  e.name = std::string(argument.substr(0, equals));
  std::string_view path = argument.substr(equals + 1);
  if (e.name.empty()) return refuse("empty export name");
  if (e.name.size() > 4096) return refuse("export name longer than 4096 bytes");
  if (path.ends_with(":ro")) {
    e.read_only = true;
    path.remove_suffix(3);
  } else if (path.ends_with(":rw")) {
    path.remove_suffix(3);
  }
  if (path.empty()) return refuse("empty path");
  e.path = std::filesystem::absolute(std::filesystem::path(path)).lexically_normal().string();
  return e;
}

}  // namespace hydrate::config
