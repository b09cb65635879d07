#pragma once

#include <memory>

#include "config/server_config.h"
#include "engine/blocking_pool.h"
#include "engine/clone/clone_volume.h"
#include "engine/io_threads.h"
#include "engine/plain_export.h"

// Builds the one export the plugin serves from its configuration, in two steps that match
// nbdkit's life cycle: what needs no thread runs in .get_ready, where errors still reach the
// user's terminal; what needs event loops (a clone's source connects through them) runs in
// .after_fork.
//
// This is the same job cli/serve_exports.cpp does for `hydrate serve`; the two should become
// one engine-side function (see docs/nbdkit-plugin.md, "Open questions").
namespace hydrate::nbdkit_plugin {

// Opens a plain export's file or device. Throws std::runtime_error naming the export and path.
std::shared_ptr<PlainExport> open_plain_export(const config::ExportConfig& e, BlockingPool& pool);

// What the files on disk say about a clone before anything is created.
struct CloneFiles {
  // Neither destination nor metadata exists: the destination will be created sparse by us, so
  // its unhydrated bytes are known to read as zero.
  bool brand_new = false;
};

// Looks at a clone's destination and metadata without creating or changing them. Refuses
// (std::runtime_error naming export and paths) metadata whose destination is gone: its bits
// would vouch for zeroes, and a directory that is missing for a file we would create.
CloneFiles inspect_clone_files(const config::ExportConfig& e);

// Opens the clone: builds its source, opens or creates destination and metadata, loads the
// map (checking I7) and starts hydration. `threads` must be running. Blocks until the clone is
// open; throws std::runtime_error naming the export.
std::shared_ptr<CloneVolume> open_clone_export(const config::ExportConfig& e,
                                               const CloneFiles& files, IoThreads& threads,
                                               BlockingPool& pool);

}  // namespace hydrate::nbdkit_plugin
