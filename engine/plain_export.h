#pragma once

#include <asio/awaitable.hpp>
#include <memory>
#include <string>
#include <vector>

#include "engine/block_device.h"
#include "engine/blocking_pool.h"
#include "engine/export.h"

namespace hydrate {

class FileBlockDevice;

struct PlainExportSettings {
  std::string name;
  std::string description;
  bool read_only = false;
};

// One file or block device served as it is (DESIGN.md §1 "plain export"; also how a snapshot is
// shared). Every request maps straight onto the device; the only state is the device's own, so
// a flush on any connection covers every connection's writes and multi-conn is safe.
class PlainExport : public Export {
 public:
  // `device` must have been opened read-only when settings.read_only is set (a read-write
  // device behind a read-only export is allowed too: the export refuses the writes).
  PlainExport(std::shared_ptr<BlockDevice> device, PlainExportSettings settings);

  // Opens `path` with FileBlockDevice and wraps it. Failures name the export and the path.
  static IoResult open_file(const std::string& path, const PlainExportSettings& settings,
                            BlockingPool* pool, std::shared_ptr<PlainExport>& out);

  const ExportInfo& info() const override { return info_; }
  BlockDevice& device() { return *device_; }

  asio::awaitable<IoResult> read(uint64_t offset, std::span<std::byte> out,
                                 std::vector<ByteRange>* zeros) override;
  asio::awaitable<IoResult> write(uint64_t offset, std::span<const std::byte> data,
                                  WriteFlags flags) override;
  asio::awaitable<IoResult> flush() override;
  asio::awaitable<IoResult> trim(uint64_t offset, uint64_t length, WriteFlags flags) override;
  asio::awaitable<IoResult> zero(uint64_t offset, uint64_t length, ZeroFlags flags) override;
  asio::awaitable<IoResult> cache(uint64_t offset, uint64_t length) override;

  std::vector<std::string> meta_contexts() const override;
  asio::awaitable<IoResult> block_status(size_t context, uint64_t offset, uint64_t length,
                                         size_t max_extents, ExtentList& out) override;

  // Reads at least this long ask the device where its holes are first, so holes are neither
  // read nor sent; shorter ones are not worth the extra lookup.
  static constexpr uint64_t kHoleLookupMinimum = 64 * 1024;

 private:
  IoResult refuse_read_only(const char* operation, uint64_t offset, uint64_t length) const;
  IoResult with_context(IoResult result) const;

  std::shared_ptr<BlockDevice> device_;
  FileBlockDevice* file_ = nullptr;  // device_ when it is a file, for readahead
  ExportInfo info_;
};

}  // namespace hydrate
