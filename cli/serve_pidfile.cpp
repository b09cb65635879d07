#include "cli/serve_pidfile.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace hydrate::cli {

void PidFile::write(const std::string& path) {
  std::string temporary = path + ".tmp." + std::to_string(::getpid());
  std::string text = std::to_string(::getpid()) + "\n";
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    throw std::runtime_error("cannot write pid file " + path + ": " + std::strerror(errno));
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  int err = errno;
  ::close(fd);
  if (!ok || ::rename(temporary.c_str(), path.c_str()) != 0) {
    if (ok) err = errno;
    ::unlink(temporary.c_str());
    throw std::runtime_error("cannot write pid file " + path + ": " + std::strerror(err));
  }
  path_ = path;
}

PidFile::~PidFile() {
  if (path_.empty()) return;
  std::ifstream in(path_);
  long pid = 0;
  if (in >> pid && pid == static_cast<long>(::getpid())) ::unlink(path_.c_str());
}

}  // namespace hydrate::cli
