#include "tests/unit/nbd_server/test_server.h"

#include <stdlib.h>

#include <condition_variable>
#include <filesystem>
#include <stdexcept>
#include <thread>

namespace hydrate::nbd::testing {

TempDir::TempDir() {
  char templ[] = "/tmp/hydrate-nbd-test-XXXXXX";
  if (!::mkdtemp(templ)) throw std::runtime_error("mkdtemp failed");
  path_ = templ;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

ExportInfo make_info(std::string name, uint64_t size, bool read_only) {
  ExportInfo info;
  info.name = std::move(name);
  info.description = "test export " + info.name;
  info.size = size;
  info.read_only = read_only;
  return info;
}

TestServer::TestServer(ServerSettings settings, unsigned threads) : threads_(threads) {
  socket_ = dir_.file("nbd.sock");
  if (settings.listen.empty()) settings.listen.push_back("unix:" + socket_);
  settings.socket_activation = false;
  server_ = std::make_unique<Server>(threads_, std::move(settings));
  threads_.start();
}

TestServer::~TestServer() {
  if (!stopped_) shutdown();
  server_.reset();
  threads_.stop();
  threads_.join();
}

std::shared_ptr<MemoryExport> TestServer::add(ExportInfo info, bool is_default) {
  auto e = std::make_shared<MemoryExport>(std::move(info));
  server_->add_export(e, is_default);
  return e;
}

void TestServer::start() {
  server_->start();
}

bool TestServer::shutdown(std::chrono::seconds bound) {
  stopped_ = true;
  auto finished = std::make_shared<std::atomic<bool>>(false);
  server_->shutdown([finished] { finished->store(true); });
  return eventually([&] { return finished->load(); }, bound);
}

std::string TestServer::uri(const std::string& export_name) const {
  return "nbd+unix:///" + export_name + "?socket=" + socket_;
}

NbdHandle::NbdHandle() : h(nbd_create()) {
  if (!h) throw std::runtime_error(nbd_get_error());
}
NbdHandle::~NbdHandle() {
  nbd_close(h);
}

std::string nbd_error_text() {
  const char* e = nbd_get_error();
  return e ? e : "(no libnbd error)";
}

std::vector<std::byte> pattern(size_t length, uint8_t seed) {
  std::vector<std::byte> out(length);
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < length; ++i) {
    x = x * 1103515245u + 12345u;
    out[i] = static_cast<std::byte>(x >> 16);
  }
  return out;
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds bound) {
  auto deadline = std::chrono::steady_clock::now() + bound;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

}  // namespace hydrate::nbd::testing
