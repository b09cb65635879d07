#pragma once

#include "config/server_config.h"
#include "engine/blocking_pool.h"
#include "engine/clone/clone_volume.h"
#include "engine/io_threads.h"

namespace hydrate::config {

// The parts of the clone `c` describes: its source (created, not yet opened) with the
// connection settings `settings` implies, and the callbacks that open or create its destination
// and metadata files with their blocking calls on `pool`. `hydrate serve` and the nbdkit plugin
// both build clones with this. Throws what make_source throws for a source it cannot make.
CloneParts make_clone_parts(const CloneExportConfig& c, const CloneSettings& settings,
                            IoThreads& threads, BlockingPool& pool);

}  // namespace hydrate::config
