#pragma once

#include <string>

namespace hydrate::cli {

// `hydrate serve --pidfile FILE`: written once the server listens (so a supervisor that sees
// the file can connect), removed when the server exits — but only if it still names this
// process, so a newer server's file is never deleted.
class PidFile {
 public:
  PidFile() = default;
  ~PidFile();
  PidFile(const PidFile&) = delete;
  PidFile& operator=(const PidFile&) = delete;

  // Writes this process's pid atomically (temporary file + rename). Throws std::runtime_error
  // naming the path on failure.
  void write(const std::string& path);

 private:
  std::string path_;
};

}  // namespace hydrate::cli
