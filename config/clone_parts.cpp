#include "config/clone_parts.h"

#include <optional>

#include "engine/file_block_device.h"
#include "engine/sources/source_factory.h"

namespace hydrate::config {
namespace {

IoResult open_file_device(const std::string& path, std::optional<uint64_t> ensure_size,
                          BlockingPool& pool, std::unique_ptr<BlockDevice>& out) {
  FileOpenOptions options;
  options.ensure_size = ensure_size;
  options.pool = &pool;
  std::unique_ptr<FileBlockDevice> device;
  IoResult r = FileBlockDevice::open(path, options, device);
  if (r) out = std::move(device);
  return r;
}

}  // namespace

CloneParts make_clone_parts(const CloneExportConfig& c, const CloneSettings& settings,
                            IoThreads& threads, BlockingPool& pool) {
  SourceOptions source_options;
  source_options.connections = c.source_connections;
  source_options.source_timeout = settings.source_timeout;
  source_options.writable = settings.discard_source_after_commit;
  CloneParts parts;
  parts.source = make_source(c.source, threads, source_options);
  parts.open_destination = [&pool, path = c.destination](uint64_t size,
                                                         std::unique_ptr<BlockDevice>& out) {
    return open_file_device(path, size, pool, out);
  };
  parts.open_metadata = [&pool, path = c.metadata](bool create, uint64_t size,
                                                   std::unique_ptr<BlockDevice>& out) {
    return open_file_device(path, create ? std::optional<uint64_t>(size) : std::nullopt, pool, out);
  };
  return parts;
}

}  // namespace hydrate::config
