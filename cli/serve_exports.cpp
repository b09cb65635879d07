#include "cli/serve_exports.h"

#include <stdexcept>

#include "engine/log.h"
#include "engine/plain_export.h"

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
  return plain;
}

std::shared_ptr<Export> open_clone(const config::ExportConfig& e, BlockingPool&) {
  throw std::runtime_error(where(e) + ": export '" + e.name +
                           "': clone exports need the clone engine, which this build of "
                           "hydrate serve does not include yet");
}

}  // namespace

std::vector<OpenedExport> open_exports(const config::ServerConfig& config, BlockingPool& pool) {
  std::vector<OpenedExport> out;
  for (const config::ExportConfig& e : config.exports) {
    std::shared_ptr<Export> opened = e.clone ? open_clone(e, pool) : open_plain(e, pool);
    out.push_back(OpenedExport{std::move(opened), e.is_default});
  }
  return out;
}

}  // namespace hydrate::cli
