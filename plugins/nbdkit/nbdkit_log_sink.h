#pragma once

namespace hydrate::nbdkit_plugin {

// Routes the engine's structured log lines into nbdkit's own logging, so they go wherever
// nbdkit's go (stderr, syslog, --log=null): errors and warnings through nbdkit_error, always
// shown; info and debug through nbdkit_debug, shown with `nbdkit -v`.
void route_engine_logs_to_nbdkit();

}  // namespace hydrate::nbdkit_plugin
