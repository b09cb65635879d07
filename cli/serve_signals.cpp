#include "cli/serve_signals.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

namespace hydrate::cli {

ServeSignals::ServeSignals() {
  // Writes to a vanished client must fail with EPIPE, not kill the server.
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  if (int err = ::pthread_sigmask(SIG_BLOCK, &set, nullptr); err != 0)
    throw std::runtime_error(std::string("cannot block signals: ") + std::strerror(err));
  signal_fd_ = ::signalfd(-1, &set, SFD_CLOEXEC);
  if (signal_fd_ < 0) throw std::runtime_error(std::string("signalfd: ") + std::strerror(errno));
  done_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (done_fd_ < 0) throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
}

ServeSignals::~ServeSignals() {
  if (signal_fd_ >= 0) ::close(signal_fd_);
  if (done_fd_ >= 0) ::close(done_fd_);
}

void ServeSignals::notify_done() {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(done_fd_, &one, sizeof one);
}

std::optional<int> ServeSignals::wait() {
  for (;;) {
    pollfd fds[2] = {{signal_fd_, POLLIN, 0}, {done_fd_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("poll: ") + std::strerror(errno));
    }
    if (fds[1].revents & POLLIN) {
      uint64_t count = 0;
      [[maybe_unused]] ssize_t n = ::read(done_fd_, &count, sizeof count);
      return std::nullopt;
    }
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo info{};
      if (::read(signal_fd_, &info, sizeof info) == static_cast<ssize_t>(sizeof info))
        return static_cast<int>(info.ssi_signo);
    }
  }
}

}  // namespace hydrate::cli
