#include "cli/serve_exports.h"

#include <asio/co_spawn.hpp>
#include <asio/use_future.hpp>
#include <filesystem>
#include <stdexcept>

#include "config/clone_parts.h"
#include "engine/file_block_device.h"
#include "engine/log.h"
#include "engine/plain_export.h"
#include "engine/snapshot_cbt.h"

namespace hydrate::cli {
namespace {

std::string where(const config::ExportConfig& e) {
  return e.location.empty() ? std::string("--export") : e.location;
}

std::shared_ptr<Export> open_plain(const config::ExportConfig& e, BlockingPool& pool) {
  std::shared_ptr<PlainExport> plain;
  PlainExportSettings settings{e.name, e.description, e.read_only};
  IoResult r = PlainExport::open_file(e.path, settings, &pool, plain);
  if (!r) throw std::runtime_error(where(e) + ": " + r.message);
  log::info("export.opened", {{"export", e.name},
                              {"path", e.path},
                              {"size", plain->info().size},
                              {"readonly", e.read_only},
                              {"fast_zero", plain->info().can_fast_zero}});
  // A hydrate-snap snapshot device also offers its changed-block map (qemu:dirty-bitmap:cbt).
  return with_snapshot_cbt(plain, e.path);
}

bool non_empty_file(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec) &&
         (!std::filesystem::is_regular_file(path, ec) || std::filesystem::file_size(path, ec) > 0);
}

std::shared_ptr<CloneVolume> open_clone(const config::ExportConfig& e, IoThreads& threads,
                                        BlockingPool& pool) {
  const config::CloneExportConfig& c = *e.clone;
  CloneSettings settings = c.settings;
  bool metadata_exists = non_empty_file(c.metadata);
  std::error_code ec;
  bool destination_exists = std::filesystem::exists(c.destination, ec);
  if (metadata_exists && !destination_exists) {
    // Without its destination the metadata's hydrated bits would point at zeroes.
    throw std::runtime_error(where(e) + ": export '" + e.name + "': destination " +
                             c.destination + " does not exist but its metadata " + c.metadata +
                             " does; restore the destination, or remove the metadata to start "
                             "a new clone");
  }
  if (!metadata_exists && !destination_exists) {
    // We create the destination as a sparse file: it reads zero until written.
    settings.destination_zeroed = true;
  }

  CloneParts parts;
  try {
    parts = config::make_clone_parts(c, settings, threads, pool);
  } catch (const std::exception& ex) {
    throw std::runtime_error(where(e) + ": export '" + e.name + "': " + ex.what());
  }

  asio::io_context& background = threads.next();
  std::shared_ptr<CloneVolume> volume;
  auto opening = asio::co_spawn(
      background, CloneVolume::open(settings, std::move(parts), background.get_executor(), volume),
      asio::use_future);
  IoResult r = opening.get();
  if (!r) throw std::runtime_error(where(e) + ": " + r.message);
  return volume;
}

}  // namespace

std::vector<OpenedExport> open_plain_exports(const config::ServerConfig& config,
                                             BlockingPool& pool) {
  std::vector<OpenedExport> out;
  for (size_t i = 0; i < config.exports.size(); ++i) {
    const config::ExportConfig& e = config.exports[i];
    if (e.clone) continue;
    out.push_back(OpenedExport{i, open_plain(e, pool), nullptr, e.is_default});
  }
  return out;
}

std::vector<OpenedExport> open_clone_exports(const config::ServerConfig& config,
                                             IoThreads& threads, BlockingPool& pool) {
  std::vector<OpenedExport> out;
  try {
    for (size_t i = 0; i < config.exports.size(); ++i) {
      const config::ExportConfig& e = config.exports[i];
      if (!e.clone) continue;
      auto volume = open_clone(e, threads, pool);
      out.push_back(OpenedExport{i, volume, volume, e.is_default});
    }
  } catch (...) {
    // Clones already running have background work on the event loops: stop it cleanly.
    close_clones(out, threads);
    throw;
  }
  return out;
}

void close_clones(const std::vector<OpenedExport>& exports, IoThreads& threads) {
  for (const OpenedExport& e : exports) {
    if (!e.clone) continue;
    auto closing = asio::co_spawn(threads.next(), e.clone->close(), asio::use_future);
    IoResult r = closing.get();
    if (!r) log::error("clone.close_failed", {{"export", e.clone->info().name}, {"error", r.message}});
  }
}

}  // namespace hydrate::cli
