#include "engine/sources/file_source.h"

#include <climits>
#include <cstdlib>
#include <cstring>

namespace hydrate {

FileSource::FileSource(std::string path, BlockingPool* pool)
    : path_(std::move(path)), pool_(pool) {}

FileSource::~FileSource() = default;

std::string FileSource::identity() const {
  return "file:" + (canonical_.empty() ? path_ : canonical_);
}

unsigned FileSource::parallelism() const {
  return (pool_ ? pool_ : &BlockingPool::shared())->threads();
}

asio::awaitable<IoResult> FileSource::open() {
  if (closed_) co_return IoResult::failure(ESHUTDOWN, "source " + identity() + " is closed");
  if (device_) co_return IoResult::failure(EINVAL, "source " + identity() + " was already opened");
  char resolved[PATH_MAX];
  if (!::realpath(path_.c_str(), resolved)) {
    const int error = errno;
    co_return IoResult::failure(error, "source file " + path_ + ": " + std::strerror(error));
  }
  FileOpenOptions options;
  options.read_only = true;
  options.pool = pool_;
  std::unique_ptr<FileBlockDevice> device;
  if (IoResult r = FileBlockDevice::open(resolved, options, device); !r) co_return r;
  canonical_ = resolved;
  device_ = std::move(device);
  co_return IoResult::success();
}

IoResult FileSource::check_open() const {
  if (closed_) return IoResult::failure(ESHUTDOWN, "source " + identity() + " is closed");
  if (!device_) return IoResult::failure(EINVAL, "source " + identity() + " is not open");
  return IoResult::success();
}

asio::awaitable<IoResult> FileSource::read(uint64_t offset, std::span<std::byte> out) {
  if (IoResult r = check_open(); !r) co_return r;
  IoResult r = co_await device_->read(offset, out);
  if (r) {
    reads_.fetch_add(1, std::memory_order_relaxed);
    bytes_read_.fetch_add(out.size(), std::memory_order_relaxed);
  } else {
    read_errors_.fetch_add(1, std::memory_order_relaxed);
  }
  co_return r;
}

asio::awaitable<IoResult> FileSource::block_status(uint64_t offset, uint64_t length,
                                                   ExtentList& out) {
  if (IoResult r = check_open(); !r) co_return r;
  // Scanners ask for huge ranges; only the part before the end is meant.
  if (offset < size()) length = std::min(length, size() - offset);
  IoResult r = co_await device_->allocation(offset, length, out);
  if (r) block_status_calls_.fetch_add(1, std::memory_order_relaxed);
  co_return r;
}

asio::awaitable<IoResult> FileSource::discard(uint64_t offset, uint64_t) {
  co_return IoResult::failure(EPERM, "source " + identity() + ": cannot discard at offset " +
                                         std::to_string(offset) +
                                         ": a file source is opened read-only");
}

SourceStats FileSource::stats() const {
  SourceStats s;
  s.bytes_read = bytes_read_.load(std::memory_order_relaxed);
  s.reads = reads_.load(std::memory_order_relaxed);
  s.read_errors = read_errors_.load(std::memory_order_relaxed);
  s.block_status_calls = block_status_calls_.load(std::memory_order_relaxed);
  s.connected = device_ != nullptr && !closed_;
  s.connections = s.connected ? 1 : 0;
  return s;
}

// The device stays open until destruction: a read that started before close() still uses it.
asio::awaitable<void> FileSource::close() {
  closed_ = true;
  co_return;
}

}  // namespace hydrate
