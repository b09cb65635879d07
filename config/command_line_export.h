#pragma once

#include <string_view>

#include "config/server_config.h"

namespace hydrate::config {

// `hydrate serve --export NAME=PATH[:ro|:rw]`: a plain export given on the command line.
// A relative PATH is made absolute against the current directory (the server may daemonize
// and change directory). Throws ConfigError naming the argument and the expected form.
ExportConfig parse_export_argument(std::string_view argument);

}  // namespace hydrate::config
