#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/yaml_reader.h"
#include "engine/blocking_pool.h"
#include "engine/clone/clone_settings.h"
#include "engine/log.h"
#include "engine/sources/source_spec.h"

// The `hydrate serve` configuration file as typed settings. The schema (every key optional
// unless marked required; relative paths are relative to the file's directory):
//
//   listen: [ "tcp://127.0.0.1:10809", "unix:/run/hydrate/nbd.sock" ]
//   socket_activation: true        # use LISTEN_FDS sockets when no listen address is given
//   threads: 0                     # event-loop threads, 0 = one per core (max 256)
//   blocking_threads: 16           # pool for fdatasync / fallocate / cache misses (1-1024)
//   max_connections: 1024
//   handshake_timeout: 30s
//   log_level: info                # debug | info | warn | error
//   tls: { mode: off|on|require, certificates: DIR, psk: FILE, verify_peer: false }
//   control: /run/hydrate/control.sock
//   exports:                       # required, at least one
//     - name: disk0                # required, unique, 1-4096 bytes
//       description: "text shown by nbdinfo"
//       readonly: false
//       default: false             # answer the empty export name
//       path: /var/lib/images/disk0.img      # a plain export, or instead:
//       clone:                                # a clone export
//         source: nbd://host/vm1   # required: nbd[s][+unix]:// URI, a path, or {nbdkit: [argv]}
//         destination: /var/lib/hydrate/vm1.img   # required
//         metadata: /var/lib/hydrate/vm1.meta     # required
//         region_size: 64KiB       # power of two, 4KiB-1GiB (default: recorded, else 64KiB)
//         fetch_window: 128KiB     # power of two, 4KiB-32MiB, >= region_size
//         copy_on_read: true
//         discard_passdown: true
//         destination_zeroed: false
//         discard_source_after_commit: false   # needs an NBD source
//         commit_interval: 1s      # 1ms-1h
//         source_timeout: 60s      # 100ms-24h
//         source_connections: 4    # 1-64
//         hydration: { enabled: true, batch: 4MiB, max_inflight: 64MiB, rate: 0,
//                      prefetch: [PROFILE, …] }  # batch >= region_size, max_inflight >= batch
//         profile: { record: true, record_limit: 2GiB, record_time: 10m, file: PATH }
//   profile: { dir: DIR, record_limit: 2GiB, record_time: 10m }   # boot profiles' defaults
//
// Listen addresses follow the server's own grammar (nbd-server/listen_address.h). The clone's
// tunable keys (region_size … hydration) are defined once, with their ranges and the rules
// between them, in config/clone_schema.h, which the nbdkit plugin's keys share.
// config/hydrate.example.yaml is a complete, commented example (a unit test keeps it valid).
namespace hydrate::config {

struct TlsConfig {
  enum class Mode { off, on, require };
  Mode mode = Mode::off;
  std::string certificates;  // directory with ca-cert.pem, server-cert.pem, server-key.pem
  std::string psk;           // file of username:hexkey lines
  bool verify_peer = false;
};

// A clone export's own keys. `settings` already carries the export's name, description and
// read-only flag, so the clone engine needs nothing else from the configuration.
struct CloneExportConfig {
  SourceSpec source;
  std::string destination;
  std::string metadata;
  unsigned source_connections = 4;
  CloneSettings settings;
};

// The top-level `profile:` map: where boot profiles live and the recording limits every clone
// starts from (its own `profile:` overrides them). docs/profile-format.md.
struct ProfileDefaults {
  std::string dir;  // empty: each clone records next to its metadata
  uint64_t record_limit_bytes = ProfileSettings{}.record_limit_bytes;
  std::chrono::milliseconds record_time = ProfileSettings{}.record_time;
};

// `<metadata>.hprof`: where a clone records its boot profile when there is no profile.dir.
std::string profile_file_beside(const std::string& metadata);

struct ExportConfig {
  std::string name;
  std::string description;
  bool read_only = false;
  bool is_default = false;
  std::string path;                        // a plain export; empty for a clone
  std::optional<CloneExportConfig> clone;  // a clone export
  std::string location;                    // "file:line:col" of the entry, for later messages
};

struct ServerConfig {
  std::string file;  // where it was read from, for messages
  std::vector<std::string> listen;
  bool socket_activation = true;
  unsigned threads = 0;
  unsigned blocking_threads = BlockingPool::kDefaultThreads;
  unsigned max_connections = 1024;
  std::chrono::milliseconds handshake_timeout{30'000};
  std::optional<log::Level> log_level;
  TlsConfig tls;
  std::string control;  // empty: no control socket
  ProfileDefaults profile;
  std::vector<ExportConfig> exports;
};

// Reads and validates `path`. Throws ConfigError (one line, naming file, line, column, key
// path and what is accepted) for unreadable files, YAML syntax errors, unknown keys, missing
// required keys, bad values and duplicate export names.
ServerConfig load_server_config(const std::string& path);

// The same from text already in memory; `file` names it in messages and relative paths are
// resolved against `base_directory`.
ServerConfig parse_server_config(std::string_view yaml, const std::string& file,
                                 const std::string& base_directory);

// Checks a whole configuration for what no single key can show: at least one export,
// unique export names, at most one default export. Throws ConfigError. Also used after
// command-line exports (`hydrate serve --export`) are merged in.
void validate_exports(const ServerConfig& config);

}  // namespace hydrate::config
