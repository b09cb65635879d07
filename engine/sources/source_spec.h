#pragma once

#include <string>
#include <utility>
#include <vector>

namespace hydrate {

// What the configuration says a clone's source is (config: `clone.source`):
//   source: nbd://backup.example.com/vm1        -> uri
//   source: /srv/images/base.img                -> path (a file or block device)
//   source: {nbdkit: [curl, "url=https://…"]}   -> nbdkit (plugin, parameters, filters)
struct SourceSpec {
  enum class Kind { uri, path, nbdkit };

  Kind kind = Kind::uri;
  std::string location;                  // the URI or the path
  std::vector<std::string> nbdkit_args;  // everything after `nbdkit` on its command line

  static SourceSpec uri(std::string text) { return {Kind::uri, std::move(text), {}}; }
  static SourceSpec path(std::string text) { return {Kind::path, std::move(text), {}}; }
  static SourceSpec nbdkit(std::vector<std::string> args) {
    return {Kind::nbdkit, {}, std::move(args)};
  }
  // A plain string from the configuration: anything with a scheme ("…://") is a URI, so an
  // unsupported scheme is reported as one rather than as a missing file.
  static SourceSpec parse(std::string text) {
    if (text.find("://") != std::string::npos) return uri(std::move(text));
    return path(std::move(text));
  }

  bool operator==(const SourceSpec&) const = default;
};

}  // namespace hydrate
