#include "cli/serve_daemon.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace hydrate::cli {
namespace {

void redirect(int target, const char* path, int flags) {
  int fd = ::open(path, flags | O_CLOEXEC, 0644);
  if (fd < 0)
    throw std::runtime_error(std::string("cannot open ") + path + ": " + std::strerror(errno));
  ::dup2(fd, target);
  ::close(fd);
}

}  // namespace

void Daemon::detach(IoThreads& threads) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    throw std::runtime_error(std::string("daemonize: pipe: ") + std::strerror(errno));
  for (unsigned i = 0; i < threads.size(); ++i)
    threads.at(i).notify_fork(asio::execution_context::fork_prepare);
  pid_t child = ::fork();
  if (child < 0) throw std::runtime_error(std::string("daemonize: fork: ") + std::strerror(errno));
  if (child > 0) {
    ::close(fds[1]);
    char byte = 0;
    ssize_t n;
    do {
      n = ::read(fds[0], &byte, 1);
    } while (n < 0 && errno == EINTR);
    if (n == 1) ::_exit(0);
    // The child ended before it was ready; it has said why on stderr.
    int status = 0;
    while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    ::_exit(WIFEXITED(status) && WEXITSTATUS(status) != 0 ? WEXITSTATUS(status) : 1);
  }
  ::close(fds[0]);
  ready_fd_ = fds[1];
  for (unsigned i = 0; i < threads.size(); ++i)
    threads.at(i).notify_fork(asio::execution_context::fork_child);
  ::setsid();
  [[maybe_unused]] int ignored = ::chdir("/");  // "/" always exists; nothing to do if not
  redirect(STDIN_FILENO, "/dev/null", O_RDONLY);
}

void Daemon::ready(const std::string& log_file) {
  if (ready_fd_ < 0) return;
  if (!log_file.empty()) redirect(STDERR_FILENO, log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND);
  redirect(STDOUT_FILENO, "/dev/null", O_WRONLY);
  if (log_file.empty()) redirect(STDERR_FILENO, "/dev/null", O_WRONLY);
  char byte = 'R';
  [[maybe_unused]] ssize_t n = ::write(ready_fd_, &byte, 1);
  ::close(ready_fd_);
  ready_fd_ = -1;
}

}  // namespace hydrate::cli
