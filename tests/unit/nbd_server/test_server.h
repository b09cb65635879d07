#pragma once

#include <libnbd.h>

#include <memory>
#include <string>
#include <vector>

#include "engine/io_threads.h"
#include "nbd-server/server.h"
#include "tests/unit/nbd_server/memory_export.h"

namespace hydrate::nbd::testing {

// A private temporary directory, removed with everything in it.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

ExportInfo make_info(std::string name, uint64_t size, bool read_only = false);

// The real Server on a Unix socket in a temp dir, on its own IoThreads. Shut down gracefully
// (bounded wait) when destroyed.
class TestServer {
 public:
  explicit TestServer(ServerSettings settings = {}, unsigned threads = 2);
  ~TestServer();

  // Adds a MemoryExport and returns it.
  std::shared_ptr<MemoryExport> add(ExportInfo info, bool is_default = false);
  void start();
  // Graceful shutdown; true when `done` ran within the bound.
  bool shutdown(std::chrono::seconds bound = std::chrono::seconds(20));

  const std::string& socket() const { return socket_; }
  std::string uri(const std::string& export_name = "") const;
  Server& server() { return *server_; }
  TempDir& dir() { return dir_; }

 private:
  TempDir dir_;
  std::string socket_;
  IoThreads threads_;
  std::unique_ptr<Server> server_;
  bool stopped_ = false;
};

// A libnbd handle that closes itself.
struct NbdHandle {
  nbd_handle* h;
  NbdHandle();
  ~NbdHandle();
  NbdHandle(const NbdHandle&) = delete;
  NbdHandle& operator=(const NbdHandle&) = delete;
  operator nbd_handle*() const { return h; }
};

// The last libnbd error, for assertion messages.
std::string nbd_error_text();

std::vector<std::byte> pattern(size_t length, uint8_t seed);

// Polls `condition` every few milliseconds for up to `bound`; true if it became true.
bool eventually(const std::function<bool()>& condition,
                std::chrono::milliseconds bound = std::chrono::seconds(20));

}  // namespace hydrate::nbd::testing
