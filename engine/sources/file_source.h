#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "engine/blocking_pool.h"
#include "engine/file_block_device.h"
#include "engine/source.h"

namespace hydrate {

// A local file or block device as a clone's source, opened read-only. Reads and allocation
// queries go through FileBlockDevice (page-cache hits inline, the rest on the BlockingPool;
// SEEK_DATA/SEEK_HOLE for files, all data for block devices).
class FileSource : public Source {
 public:
  // `pool` = null uses BlockingPool::shared().
  explicit FileSource(std::string path, BlockingPool* pool = nullptr);
  ~FileSource() override;

  asio::awaitable<IoResult> open() override;
  uint64_t size() const override { return device_ ? device_->size() : 0; }
  // "file:" + the canonical path (symbolic links resolved), known once open() succeeded.
  std::string identity() const override;
  unsigned parallelism() const override;

  asio::awaitable<IoResult> read(uint64_t offset, std::span<std::byte> out) override;
  asio::awaitable<IoResult> block_status(uint64_t offset, uint64_t length,
                                         ExtentList& out) override;
  bool can_discard() const override { return false; }
  asio::awaitable<IoResult> discard(uint64_t offset, uint64_t length) override;

  SourceStats stats() const override;
  asio::awaitable<void> close() override;

 private:
  IoResult check_open() const;

  const std::string path_;
  BlockingPool* pool_;
  std::string canonical_;
  std::unique_ptr<FileBlockDevice> device_;
  std::atomic<bool> closed_{false};
  std::atomic<uint64_t> bytes_read_{0};
  std::atomic<uint64_t> reads_{0};
  std::atomic<uint64_t> read_errors_{0};
  std::atomic<uint64_t> block_status_calls_{0};
};

}  // namespace hydrate
