#pragma once

#include <memory>
#include <vector>

#include "config/server_config.h"
#include "engine/blocking_pool.h"
#include "engine/export.h"

namespace hydrate::cli {

struct OpenedExport {
  std::shared_ptr<Export> export_;
  bool is_default = false;
};

// Opens every export the configuration names, in order. Throws std::runtime_error with one
// line naming the export, where it was configured and what failed (missing file, permission,
// not a file or device, clone exports before the clone engine exists).
std::vector<OpenedExport> open_exports(const config::ServerConfig& config, BlockingPool& pool);

}  // namespace hydrate::cli
