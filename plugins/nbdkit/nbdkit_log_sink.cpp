#include "plugins/nbdkit/nbdkit_log_sink.h"

#include <nbdkit-plugin.h>

#include <string>

#include "engine/log.h"

namespace hydrate::nbdkit_plugin {

void route_engine_logs_to_nbdkit() {
  log::set_sink([](log::Level level, std::string_view line) {
    // nbdkit adds its own prefix and newline.
    std::string text(line);
    while (!text.empty() && text.back() == '\n') text.pop_back();
    if (level == log::Level::error)
      nbdkit_error("%s", text.c_str());
    else if (level == log::Level::warn)
      nbdkit_error("warning: %s", text.c_str());
    else
      nbdkit_debug("%s", text.c_str());
  });
}

}  // namespace hydrate::nbdkit_plugin
