#include "engine/sources/nbdkit_source.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "engine/blocking_pool.h"

namespace hydrate {

NbdkitSource::NbdkitSource(IoThreads& threads, std::vector<std::string> args, SourceOptions options)
    : threads_(threads), args_(std::move(args)), options_(options) {}

NbdkitSource::~NbdkitSource() {
  nbd_.reset();
  if (process_) process_->stop();
  remove_directory();
}

std::string NbdkitSource::identity() const {
  return "nbdkit:" + NbdkitProcess::describe(args_);
}

asio::awaitable<IoResult> NbdkitSource::open() {
  if (closed_) co_return IoResult::failure(ESHUTDOWN, "source " + identity() + " is closed");
  if (process_) co_return IoResult::failure(EINVAL, "source " + identity() + " was already opened");
  if (IoResult r = NbdkitProcess::check_args(args_); !r) co_return r;

  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/hydrate-nbdkit-XXXXXX";
  if (!::mkdtemp(pattern.data())) {
    const int error = errno;
    co_return IoResult::failure(error, "source " + identity() + ": cannot create a directory " +
                                           pattern +
                                           " for nbdkit's socket: " + std::strerror(error));
  }
  directory_ = pattern;
  process_ = std::make_shared<NbdkitProcess>(args_, directory_);
  if (IoResult r = process_->ensure_running(); !r) co_return r;
  if (IoResult r = co_await process_->wait_listening(options_.connect_timeout); !r) co_return r;

  NbdUri uri;
  if (IoResult r = NbdUri::parse(process_->uri(), uri); !r) co_return r;
  nbd_ = std::make_unique<NbdSource>(threads_, std::move(uri), options_,
                                     [process = process_] { return process->ensure_running(); });
  co_return co_await nbd_->open();
}

asio::awaitable<void> NbdkitSource::close() {
  if (closed_) co_return;
  closed_ = true;
  if (nbd_) co_await nbd_->close();
  if (process_) {
    // Stopping waits for nbdkit to exit: not on an event loop. (A named callable: GCC 12
    // destroys a lambda temporary inside a co_await expression twice.)
    auto stop = [process = process_] { process->stop(); };
    co_await BlockingPool::shared().run(std::move(stop));
  }
  remove_directory();
}

void NbdkitSource::remove_directory() {
  if (directory_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(directory_, ec);
  directory_.clear();
}

IoResult NbdkitSource::not_open() const {
  if (closed_) return IoResult::failure(ESHUTDOWN, "source " + identity() + " is closed");
  return IoResult::failure(EINVAL, "source " + identity() + " is not open");
}

uint64_t NbdkitSource::size() const {
  return nbd_ ? nbd_->size() : 0;
}

unsigned NbdkitSource::parallelism() const {
  return nbd_ ? nbd_->parallelism() : std::max(1u, options_.depth_per_connection);
}

asio::awaitable<IoResult> NbdkitSource::read(uint64_t offset, std::span<std::byte> out) {
  if (!nbd_) co_return not_open();
  co_return co_await nbd_->read(offset, out);
}

asio::awaitable<IoResult> NbdkitSource::read_background(uint64_t offset,
                                                        std::span<std::byte> out) {
  if (!nbd_) co_return not_open();
  co_return co_await nbd_->read_background(offset, out);
}

asio::awaitable<IoResult> NbdkitSource::block_status(uint64_t offset, uint64_t length,
                                                     ExtentList& out) {
  if (!nbd_) co_return not_open();
  co_return co_await nbd_->block_status(offset, length, out);
}

bool NbdkitSource::can_discard() const {
  return nbd_ && nbd_->can_discard();
}

asio::awaitable<IoResult> NbdkitSource::discard(uint64_t offset, uint64_t length) {
  if (!nbd_) co_return not_open();
  co_return co_await nbd_->discard(offset, length);
}

SourceStats NbdkitSource::stats() const {
  return nbd_ ? nbd_->stats() : SourceStats{};
}

}  // namespace hydrate
