#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/clone_schema.h"
#include "config/server_config.h"
#include "engine/log.h"

// The plugin's `key=value` parameters (nbdkit hydrate KEY=VALUE…): one export, described either
// by a hydrate YAML configuration (config=FILE [export=NAME]) or by inline keys, plus the
// process-wide knobs nbdkit has no say in (control socket, engine threads, log level).
namespace hydrate::nbdkit_plugin {

// A parameter the user must fix. The message names the key: "region-size=3KiB: …".
class KeyError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What the plugin serves and how it runs, once every key is in.
struct PluginSettings {
  config::ExportConfig export_config;  // the one export (plain or clone)
  std::string control;                 // control socket path; empty for none
  unsigned threads = 0;                // engine event loops, 0 = one per core
  unsigned blocking_threads = 16;      // engine pool for calls that may sleep
  log::Level log_level = log::Level::info;
};

// Collects the keys nbdkit passes to .config, checking each value as it arrives, then
// (complete()) the combination. Keys may be spelt with '-' or '_' (region-size, region_size).
class PluginKeys {
 public:
  // Records one parameter. Throws KeyError for an unknown key, a key given twice, or a value
  // that does not parse or is out of range; the message names the key and what is accepted.
  void set(std::string_view key, std::string_view value);

  // Loads config=FILE if given and applies the other keys on top; checks that exactly one way
  // of describing the export was used and that the values fit together. Throws KeyError naming
  // the key (or the configuration file's own ConfigError text, prefixed with config=FILE).
  PluginSettings complete() const;

  // The text nbdkit shows under `nbdkit hydrate --help`: every key; the clone settings'
  // lines come from the clone schema.
  static const char* help();

 private:
  // Every key the plugin accepts, parsed. Unset keys keep the configuration's or the engine's
  // defaults.
  std::optional<std::string> config_file_;
  std::optional<std::string> export_name_;
  std::optional<std::string> file_;
  std::optional<SourceSpec> source_;
  std::optional<std::string> destination_;
  std::optional<std::string> metadata_;
  std::optional<std::string> description_;
  std::optional<std::string> control_;
  std::optional<bool> read_only_;
  // The clone settings given (config/clone_schema.h), in the order they came.
  std::vector<std::pair<const config::CloneSetting*, config::SettingValue>> clone_settings_;
  std::optional<unsigned> threads_;
  std::optional<unsigned> blocking_threads_;
  std::optional<log::Level> log_level_;
  std::set<std::string> seen_;  // canonical names of the keys given so far

  config::ServerConfig load_config_file() const;
  config::ExportConfig choose_export(const config::ServerConfig& server) const;
  config::ExportConfig export_from_inline_keys() const;
  void apply_overrides(config::ExportConfig& e) const;
  void check_clone_settings(const config::ExportConfig& e) const;
  bool given(const config::CloneSetting& setting) const;
};

}  // namespace hydrate::nbdkit_plugin
