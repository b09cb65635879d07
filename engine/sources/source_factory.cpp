#include "engine/sources/source_factory.h"

#include <stdexcept>

#include "engine/sources/file_source.h"
#include "engine/sources/nbd_source.h"
#include "engine/sources/nbd_uri.h"
#include "engine/sources/nbdkit_process.h"
#include "engine/sources/nbdkit_source.h"

namespace hydrate {
namespace {

void check_options(const SourceOptions& o) {
  auto bad = [](const std::string& what) {
    throw std::invalid_argument("invalid source options: " + what);
  };
  if (o.connections < 1 || o.connections > 64)
    bad("source_connections is " + std::to_string(o.connections) + ", expected 1 to 64");
  if (o.depth_per_connection < 1) bad("the per-connection request depth is 0, expected at least 1");
  if (o.source_timeout.count() <= 0) bad("source_timeout must be positive");
  if (o.connect_timeout.count() <= 0) bad("the connect timeout must be positive");
  if (o.backoff.initial.count() <= 0 || o.backoff.max < o.backoff.initial)
    bad("the reconnect backoff needs 0 < initial <= max");
}

}  // namespace

std::unique_ptr<Source> make_source(const SourceSpec& spec, IoThreads& threads,
                                    const SourceOptions& options) {
  check_options(options);
  switch (spec.kind) {
    case SourceSpec::Kind::uri: {
      NbdUri uri;
      if (IoResult r = NbdUri::parse(spec.location, uri); !r)
        throw std::invalid_argument(r.message);
      return std::make_unique<NbdSource>(threads, std::move(uri), options);
    }
    case SourceSpec::Kind::path:
      if (spec.location.empty()) throw std::invalid_argument("source path is empty");
      if (options.writable)
        throw std::invalid_argument("source " + spec.location +
                                    ": discard_source_after_commit needs an NBD source; a file "
                                    "source is opened read-only");
      return std::make_unique<FileSource>(spec.location);
    case SourceSpec::Kind::nbdkit:
      if (IoResult r = NbdkitProcess::check_args(spec.nbdkit_args); !r)
        throw std::invalid_argument(r.message);
      return std::make_unique<NbdkitSource>(threads, spec.nbdkit_args, options);
  }
  throw std::invalid_argument("unknown source kind");
}

}  // namespace hydrate
