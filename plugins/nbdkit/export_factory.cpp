#include "plugins/nbdkit/export_factory.h"

#include <filesystem>
#include <stdexcept>

#include "config/clone_parts.h"
#include "engine/file_block_device.h"
#include "engine/log.h"
#include "engine/sources/source_factory.h"
#include "plugins/nbdkit/blocking_wait.h"

namespace hydrate::nbdkit_plugin {
namespace {

std::runtime_error failure(const config::ExportConfig& e, const std::string& what) {
  return std::runtime_error(e.location + ": export '" + e.name + "': " + what);
}

// A file we may create must have an existing directory; saying so now beats an ENOENT from
// deep inside the clone's open.
void require_parent_directory(const config::ExportConfig& e, const char* role,
                              const std::string& path) {
  std::error_code ec;
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty() && !std::filesystem::is_directory(parent, ec))
    throw failure(
        e, std::string(role) + " " + path + ": directory " + parent.string() + " does not exist");
}

// Metadata counts as present only with content: an empty file is what a crash before the first
// metadata write leaves, and the clone treats it as new.
bool has_content(const std::string& path) {
  std::error_code ec;
  auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) return false;
  if (!std::filesystem::is_regular_file(status)) return true;  // a block device
  return std::filesystem::file_size(path, ec) > 0 && !ec;
}

}  // namespace

std::shared_ptr<PlainExport> open_plain_export(const config::ExportConfig& e, BlockingPool& pool) {
  PlainExportSettings settings{e.name, e.description, e.read_only};
  std::shared_ptr<PlainExport> plain;
  if (IoResult r = PlainExport::open_file(e.path, settings, &pool, plain); !r)
    throw std::runtime_error(e.location + ": " + r.message);
  log::info("export.opened", {{"export", e.name},
                              {"path", e.path},
                              {"size", plain->info().size},
                              {"readonly", e.read_only}});
  return plain;
}

CloneFiles inspect_clone_files(const config::ExportConfig& e) {
  const config::CloneExportConfig& c = *e.clone;
  std::error_code ec;
  bool destination_exists = std::filesystem::exists(c.destination, ec);
  bool metadata_present = has_content(c.metadata);
  if (metadata_present && !destination_exists)
    throw failure(e, "metadata " + c.metadata + " records hydrated regions, but destination " +
                         c.destination +
                         " does not exist; restore the destination, or remove the metadata to "
                         "start a new clone");
  if (!destination_exists) require_parent_directory(e, "destination", c.destination);
  if (!std::filesystem::exists(c.metadata, ec)) require_parent_directory(e, "metadata", c.metadata);
  return CloneFiles{!destination_exists && !metadata_present};
}

std::shared_ptr<CloneVolume> open_clone_export(const config::ExportConfig& e,
                                               const CloneFiles& files, IoThreads& threads,
                                               BlockingPool& pool) {
  const config::CloneExportConfig& c = *e.clone;
  CloneSettings settings = c.settings;
  if (files.brand_new) settings.destination_zeroed = true;

  CloneParts parts;
  try {
    parts = config::make_clone_parts(c, settings, threads, pool);
  } catch (const std::exception& ex) {
    throw failure(e, ex.what());
  }

  asio::io_context& home = threads.next();
  std::shared_ptr<CloneVolume> volume;
  IoResult r = wait_for(
      home, CloneVolume::open(std::move(settings), std::move(parts), home.get_executor(), volume));
  if (!r) throw std::runtime_error(e.location + ": " + r.message);
  return volume;
}

}  // namespace hydrate::nbdkit_plugin
