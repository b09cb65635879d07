#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "config/server_config.h"

// The tunable settings of a clone export, once: the YAML reader (`clone:` in `hydrate serve -c
// FILE`), the nbdkit plugin's `key=value` parameters, the plugin's --help and the reference
// text all walk this table, so a setting's names, range, rule, default and help cannot drift
// apart between them. The keys that say *what* is cloned (source, destination, metadata) are
// not here: their forms differ on purpose (a YAML map for an nbdkit source, paths relative to
// the file or to the working directory) and each reader keeps its own.
namespace hydrate::config {

// How a setting's value is written. Each reader turns its own text (a YAML scalar, a plugin
// parameter) into the value, with the range below.
enum class SettingKind {
  size,      // bytes: 65536, 64KiB (units.h)
  duration,  // 250ms, 1s, 5m (units.h)
  count,     // a whole number
  boolean,   // each syntax has its spellings (YAML true/false; the plugin also yes/no, on/off, 1/0)
  rate,      // bytes per second, 0 = unlimited (units.h)
};

// Which names a message or a help text uses: YAML's snake_case path inside `clone:`
// ("hydration.max_inflight") or the plugin's key ("max-inflight").
enum class KeySyntax { yaml, plugin };

// A parsed value: booleans, byte counts (sizes, rates, counts) and durations.
using SettingValue = std::variant<bool, uint64_t, std::chrono::milliseconds>;

struct CloneSetting {
  std::string_view yaml_section;  // "" for a key of `clone:`, "hydration" for `clone.hydration:`
  std::string_view yaml_key;      // "region_size", "batch"
  std::string_view plugin_key;    // "region-size", "batch" (the plugin also accepts '_')
  SettingKind kind;
  uint64_t min = 0;  // the range: bytes, milliseconds or a count; not used by booleans and rates
  uint64_t max = 0;
  // A rule inside the range, and its name for messages ("a power of two"); nullptr for none.
  bool (*valid)(uint64_t) = nullptr;
  std::string_view rule;
  std::string_view help;  // what it does, one phrase; range, rule and default are added
  // What the engine's default value 0 means where 0 cannot be written ("" = say the value).
  std::string_view zero_means;
  // The member it fills in a CloneExportConfig, and reads back (for defaults and rules).
  void (*store)(CloneExportConfig&, const SettingValue&) = nullptr;
  SettingValue (*load)(const CloneExportConfig&) = nullptr;

  std::string_view name(KeySyntax syntax) const;
  // "hydration.max_inflight" (YAML, relative to `clone:`) or "max-inflight".
  std::string path(KeySyntax syntax) const;
  // "SIZE", "DURATION", "N", "BOOL", "RATE": the plugin's placeholder in `key=<SIZE>`.
  std::string_view placeholder() const;
  // "out of range" and "not a power of two" messages end with this: "a power of two from 4KiB
  // to 1GiB", "1ms to 1h", "a whole number from 1 to 64"; empty for booleans and rates.
  std::string expected_range() const;
  // Empty when an in-range `value` satisfies the rule; else "not a power of two; expected …",
  // a phrase that follows the value as the reader shows it.
  std::string rule_problem(uint64_t value) const;
};

// Every setting, in the order YAML's key lists and the help show them.
std::span<const CloneSetting> clone_settings();

// The setting a plugin key names ('-' and '_' alike), or nullptr.
const CloneSetting* find_plugin_setting(std::string_view key);

// The YAML keys directly inside `clone:` (section "") or `clone.<section>:`, settings and
// sections alike, in table order: what the reader accepts in that map besides its own keys.
std::vector<std::string_view> clone_yaml_keys(std::string_view section);
// The sections below `clone:` ("hydration").
std::vector<std::string_view> clone_yaml_sections();

// A combination of settings the engine cannot run with (fetch_window < region_size, …).
struct CloneSettingsConflict {
  const CloneSetting* blamed;  // the setting to name: one the user gave, if any of the two
  std::string problem;         // "fetch-window (64KiB) is smaller than region-size (128KiB); …"
};

// The one implementation of the rules between a clone's settings (and its source), for the
// YAML reader and the plugin alike: fetch_window >= region_size, hydration.batch >=
// region_size, hydration.max_inflight >= hydration.batch, and discard_source_after_commit
// only for a source that can be written to. `given` says which settings the user wrote, so
// the message blames one of those rather than a default. Names follow `syntax`.
std::optional<CloneSettingsConflict> find_clone_settings_conflict(
    const CloneExportConfig& clone, const std::function<bool(const CloneSetting&)>& given,
    KeySyntax syntax);

// One entry per setting for `nbdkit hydrate --help`, wrapped at 88 columns like the rest:
//   fetch-window=<SIZE>     a read miss fetches this much (aligned) from the source; a
//                           power of two from 4KiB to 32MiB, at least region-size (default …)
std::string clone_settings_plugin_help();

// The settings as reference documentation (for the manual page): each with both its names,
// its form, range, rules and default, wrapped at 79 columns.
std::string clone_settings_reference();

}  // namespace hydrate::config
