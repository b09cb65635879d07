#pragma once

#include <memory>

#include "engine/io_threads.h"
#include "engine/source.h"
#include "engine/sources/source_options.h"
#include "engine/sources/source_spec.h"

namespace hydrate {

// Builds the source a clone's configuration names; the result still needs open(). A spec that
// cannot work (unsupported scheme, malformed URI, empty path, nbdkit arguments that would take
// the listener, nonsensical options) throws std::invalid_argument with a message naming the
// offending text — at startup, before any I/O.
std::unique_ptr<Source> make_source(const SourceSpec& spec, IoThreads& threads,
                                    const SourceOptions& options);

}  // namespace hydrate
