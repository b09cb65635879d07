#pragma once

#include <vector>

namespace hydrate::nbd {

// File descriptors passed by systemd-style socket activation (LISTEN_PID = this process,
// LISTEN_FDS = n: descriptors 3 … 3+n-1), as `nbdinfo -- [ hydrate serve … ]` and systemd
// .socket units do. The variables are removed so child processes do not take the sockets
// for theirs, and the descriptors are marked close-on-exec. Empty when nothing was passed.
std::vector<int> take_activated_sockets();

}  // namespace hydrate::nbd
