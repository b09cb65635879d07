#pragma once

#include <memory>
#include <vector>

#include "config/server_config.h"
#include "engine/blocking_pool.h"
#include "engine/clone/clone_volume.h"
#include "engine/export.h"
#include "engine/io_threads.h"

namespace hydrate::cli {

struct OpenedExport {
  size_t index = 0;  // position in the configuration
  std::shared_ptr<Export> export_;
  std::shared_ptr<CloneVolume> clone;  // set for clone exports
  bool is_default = false;
};

// Opens the plain exports the configuration names, in order; needs no running event loop, so
// it can run before `--daemonize` forks. Throws std::runtime_error with one line naming the
// export, where it was configured and what failed.
std::vector<OpenedExport> open_plain_exports(const config::ServerConfig& config,
                                             BlockingPool& pool);

// Opens the clone exports: loads or creates their metadata, checks I7 and starts hydration.
// Needs `threads` running (sources connect through them). Throws like open_plain_exports.
std::vector<OpenedExport> open_clone_exports(const config::ServerConfig& config,
                                             IoThreads& threads, BlockingPool& pool);

// Stops each clone's background work and commits its map (the server has already flushed).
void close_clones(const std::vector<OpenedExport>& exports, IoThreads& threads);

}  // namespace hydrate::cli
