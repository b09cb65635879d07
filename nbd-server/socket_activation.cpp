#include "nbd-server/socket_activation.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "engine/log.h"

namespace hydrate::nbd {

namespace {
constexpr int kFirstActivatedFd = 3;  // SD_LISTEN_FDS_START

bool parse_number(const char* text, long& out) {
  if (!text || !*text) return false;
  char* end = nullptr;
  out = std::strtol(text, &end, 10);
  return *end == '\0';
}
}  // namespace

std::vector<int> take_activated_sockets() {
  const char* pid_text = std::getenv("LISTEN_PID");
  const char* fds_text = std::getenv("LISTEN_FDS");
  if (!pid_text || !fds_text) return {};
  long pid = 0, count = 0;
  bool ours = parse_number(pid_text, pid) && pid == static_cast<long>(::getpid());
  bool valid = parse_number(fds_text, count) && count > 0 && count < 1024;
  if (!ours) return {};  // meant for another process (e.g. our parent)
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_FDNAMES");
  if (!valid) {
    log::warn("nbd.socket_activation_ignored", {{"LISTEN_FDS", fds_text ? fds_text : ""}});
    return {};
  }
  std::vector<int> fds;
  for (int fd = kFirstActivatedFd; fd < kFirstActivatedFd + count; ++fd) {
    int flags = ::fcntl(fd, F_GETFD);
    if (flags < 0) {
      log::warn("nbd.socket_activation_bad_fd", {{"fd", fd}});
      continue;
    }
    ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
    fds.push_back(fd);
  }
  return fds;
}

}  // namespace hydrate::nbd
