#include "plugins/nbdkit/plugin_keys.h"

#include <algorithm>
#include <charconv>
#include <filesystem>

#include "config/units.h"
#include "engine/sources/nbd_uri.h"

namespace hydrate::nbdkit_plugin {
namespace {

using std::chrono::milliseconds;
constexpr size_t kMaxNameBytes = 4096;  // NBD limit for export names and descriptions

// --help: the plugin's own keys around the clone settings, whose lines come from the clone
// schema (config/clone_schema.h) so that they say what the code accepts.
constexpr const char* kHelpBeforeCloneSettings =
    "One export, from a hydrate YAML configuration:\n"
    "config=<FILE>           hydrate configuration (the `hydrate serve` schema); a bare\n"
    "                        parameter is taken as config=\n"
    "export=<NAME>           which export of FILE to serve (default: the one marked\n"
    "                        default, or the only one); with inline keys, the export's name\n"
    "or from inline keys, a clone:\n"
    "source=<URI|PATH>       nbd://, nbds://, nbd+unix://, nbds+unix:// URI, or a file or\n"
    "                        block device (read-only original)\n"
    "destination=<PATH>      local file or block device that becomes the copy\n"
    "metadata=<PATH>         file that records which regions are hydrated\n"
    "or a plain export:\n"
    "file=<PATH>             file or block device served as it is\n"
    "Either way (these override the configuration file):\n"
    "description=<TEXT>      export description shown to clients\n"
    "readonly=<BOOL>         refuse client writes (a clone still hydrates)\n"
    "A clone's settings (these too):\n";

constexpr const char* kHelpAfterCloneSettings =
    "Process:\n"
    "control=<PATH>          control socket for `hydrate status` and `hydrate ctl`\n"
    "threads=<N>             engine event loops, 0-256 (default 0 = one per core)\n"
    "blocking-threads=<N>    engine threads for calls that may sleep, 1-1024 (default 16)\n"
    "log-level=<LEVEL>       debug, info, warn or error (default info; below error the\n"
    "                        lines are nbdkit debug messages, shown with -v)\n"
    "SIZE: 65536, 64KiB, 4MiB, 1GiB. DURATION: 250ms, 1s, 5m, 2h. RATE: a SIZE per second,\n"
    "e.g. 100MiB/s. BOOL: true/false, yes/no, on/off, 1/0.";

std::string canonical(std::string_view key) {
  std::string out(key);
  std::replace(out.begin(), out.end(), '_', '-');
  return out;
}

// "key=value" as the user wrote it, shortened if the value is long.
std::string shown(std::string_view key, std::string_view value) {
  std::string v(value.substr(0, 200));
  if (value.size() > 200) v += "…";
  return std::string(key) + "=" + v;
}

[[noreturn]] void refuse(std::string_view key, std::string_view value, std::string_view problem) {
  throw KeyError(shown(key, value) + ": " + std::string(problem));
}

bool parse_bool(std::string_view key, std::string_view value) {
  std::string v(value);
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
  if (v == "true" || v == "yes" || v == "on" || v == "1") return true;
  if (v == "false" || v == "no" || v == "off" || v == "0") return false;
  refuse(key, value, "expected a boolean: true/false, yes/no, on/off or 1/0");
}

uint64_t parse_size_setting(const config::CloneSetting& setting, std::string_view key,
                            std::string_view value) {
  std::optional<uint64_t> size = config::parse_size(value);
  if (!size) refuse(key, value, "expected " + std::string(config::kSizeForm));
  if (*size < setting.min || *size > setting.max)
    refuse(key, value, "out of range; expected " + setting.expected_range());
  if (std::string problem = setting.rule_problem(*size); !problem.empty())
    refuse(key, value, problem);
  return *size;
}

milliseconds parse_duration_setting(const config::CloneSetting& setting, std::string_view key,
                                    std::string_view value) {
  std::optional<milliseconds> d = config::parse_duration(value);
  if (!d) refuse(key, value, "expected " + std::string(config::kDurationForm));
  if (*d < milliseconds(setting.min) || *d > milliseconds(setting.max))
    refuse(key, value, "out of range; expected " + setting.expected_range());
  return *d;
}

unsigned parse_count(std::string_view key, std::string_view value, unsigned min, unsigned max) {
  unsigned n = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (ec != std::errc() || end != value.data() + value.size() || n < min || n > max)
    refuse(key, value,
           "expected a whole number from " + std::to_string(min) + " to " + std::to_string(max));
  return n;
}

// A clone setting's value from its parameter; the range and rule come from the schema.
config::SettingValue parse_setting(const config::CloneSetting& setting, std::string_view key,
                                   std::string_view value) {
  switch (setting.kind) {
    case config::SettingKind::boolean:
      return parse_bool(key, value);
    case config::SettingKind::size:
      return parse_size_setting(setting, key, value);
    case config::SettingKind::duration:
      return parse_duration_setting(setting, key, value);
    case config::SettingKind::count:
      return uint64_t{parse_count(key, value, static_cast<unsigned>(setting.min),
                                  static_cast<unsigned>(setting.max))};
    case config::SettingKind::rate:
      if (std::optional<uint64_t> rate = config::parse_rate(value)) return *rate;
      refuse(key, value, "expected " + std::string(config::kRateForm));
  }
  refuse(key, value, "unknown kind of setting");
}

// Relative paths are made absolute now: nbdkit changes directory to / when it daemonizes.
std::string parse_path(std::string_view key, std::string_view value) {
  if (value.empty()) refuse(key, value, "needs a path, found an empty value");
  return std::filesystem::absolute(std::filesystem::path(value)).lexically_normal().string();
}

SourceSpec parse_source(std::string_view key, std::string_view value) {
  if (value.empty()) refuse(key, value, "needs a source, found an empty value");
  if (value.find("://") == std::string_view::npos) return SourceSpec::path(parse_path(key, value));
  NbdUri uri;
  if (IoResult r = NbdUri::parse(value, uri); !r)
    refuse(key, value,
           r.message +
               " (a source is an nbd://, nbds://, nbd+unix:// or nbds+unix:// URI, or a path; an "
               "nbdkit source needs config=FILE with `source: {nbdkit: [...]}`)");
  return SourceSpec::uri(std::string(value));
}

std::string parse_text(std::string_view key, std::string_view value, size_t min_bytes) {
  if (value.size() < min_bytes || value.size() > kMaxNameBytes)
    refuse(key, value,
           "expected " + std::to_string(min_bytes) + " to 4096 bytes, found " +
               std::to_string(value.size()));
  return std::string(value);
}

log::Level parse_level(std::string_view key, std::string_view value) {
  for (log::Level l : {log::Level::debug, log::Level::info, log::Level::warn, log::Level::error})
    if (value == log::level_name(l)) return l;
  refuse(key, value, "expected debug, info, warn or error");
}

// The file name without directory and extension: the export's name when none is given.
std::string stem_of(const std::string& path) {
  std::string stem = std::filesystem::path(path).stem().string();
  return stem.empty() ? std::string("hydrate") : stem;
}

}  // namespace

const char* PluginKeys::help() {
  // Built once, when nbdkit loads the plugin; the schema is constant-initialized by then.
  static const std::string text =
      kHelpBeforeCloneSettings + config::clone_settings_plugin_help() + kHelpAfterCloneSettings;
  return text.c_str();
}

bool PluginKeys::given(const config::CloneSetting& setting) const {
  return seen_.contains(std::string(setting.plugin_key));
}

void PluginKeys::set(std::string_view raw_key, std::string_view value) {
  const std::string key = canonical(raw_key);
  if (!seen_.insert(key).second)
    throw KeyError(shown(raw_key, value) + ": key '" + key +
                   "' was already given; each key may appear once");
  auto as = [&](auto& field, auto parsed) { field = std::move(parsed); };

  if (const config::CloneSetting* setting = config::find_plugin_setting(key)) {
    clone_settings_.emplace_back(setting, parse_setting(*setting, raw_key, value));
  } else if (key == "config") {
    as(config_file_, parse_path(raw_key, value));
  } else if (key == "export") {
    as(export_name_, parse_text(raw_key, value, 1));
  } else if (key == "file") {
    as(file_, parse_path(raw_key, value));
  } else if (key == "source") {
    as(source_, parse_source(raw_key, value));
  } else if (key == "destination") {
    as(destination_, parse_path(raw_key, value));
  } else if (key == "metadata") {
    as(metadata_, parse_path(raw_key, value));
  } else if (key == "description") {
    as(description_, parse_text(raw_key, value, 0));
  } else if (key == "control") {
    std::string path = parse_path(raw_key, value);
    if (path.size() >= 108) refuse(raw_key, value, "a Unix socket path must be under 108 bytes");
    as(control_, path);
  } else if (key == "readonly" || key == "read-only") {
    as(read_only_, parse_bool(raw_key, value));
  } else if (key == "threads") {
    as(threads_, parse_count(raw_key, value, 0, 256));
  } else if (key == "blocking-threads") {
    as(blocking_threads_, parse_count(raw_key, value, 1, 1024));
  } else if (key == "log-level") {
    as(log_level_, parse_level(raw_key, value));
  } else {
    seen_.erase(key);
    throw KeyError(shown(raw_key, value) + ": unknown key '" + std::string(raw_key) +
                   "'; `nbdkit hydrate --help` lists the keys");
  }
}

config::ServerConfig PluginKeys::load_config_file() const {
  const std::string& file = *config_file_;
  for (auto [given, name] :
       {std::pair{file_.has_value(), "file"}, std::pair{source_.has_value(), "source"},
        std::pair{destination_.has_value(), "destination"},
        std::pair{metadata_.has_value(), "metadata"}})
    if (given)
      throw KeyError(std::string(name) + "=: not allowed together with config=" + file +
                     "; the export comes from the configuration file (use one or the other)");
  try {
    return config::load_server_config(file);
  } catch (const std::exception& e) {
    throw KeyError("config=" + file + ": " + e.what());
  }
}

config::ExportConfig PluginKeys::choose_export(const config::ServerConfig& server) const {
  const std::string& file = *config_file_;
  const config::ExportConfig* chosen = nullptr;
  std::string names;
  for (const config::ExportConfig& e : server.exports) {
    names += (names.empty() ? "" : ", ") + e.name;
    if (export_name_ ? e.name == *export_name_ : e.is_default) chosen = &e;
  }
  if (!chosen && export_name_)
    throw KeyError("export=" + *export_name_ + ": config=" + file +
                   " has no export of that name; it has: " + names);
  if (!chosen && server.exports.size() == 1) chosen = &server.exports.front();
  if (!chosen)
    throw KeyError("export=: config=" + file + " has " + std::to_string(server.exports.size()) +
                   " exports (" + names + ") and none is the default; choose one with export=NAME");
  return *chosen;
}

config::ExportConfig PluginKeys::export_from_inline_keys() const {
  bool clone_keys = source_ || destination_ || metadata_;
  if (file_ && clone_keys)
    throw KeyError(std::string(source_        ? "source"
                               : destination_ ? "destination"
                                              : "metadata") +
                   "=: not allowed together with file=; file= serves a plain export, "
                   "source=/destination=/metadata= a clone");
  if (!file_ && !clone_keys)
    throw KeyError(
        "no export given: pass config=FILE, or source=, destination= and metadata= for a clone, "
        "or file= for a plain export (`nbdkit hydrate --help` lists the keys)");
  config::ExportConfig e;
  if (file_) {
    e.path = *file_;
    e.name = export_name_.value_or(stem_of(*file_));
    e.location = "file=" + *file_;
    return e;
  }
  for (auto [given, name] : {std::pair{source_.has_value(), "source"},
                             std::pair{destination_.has_value(), "destination"},
                             std::pair{metadata_.has_value(), "metadata"}})
    if (!given)
      throw KeyError(std::string(name) +
                     "=: missing; a clone needs source=, destination= and "
                     "metadata=");
  if (*destination_ == *metadata_)
    throw KeyError("metadata=" + *metadata_ +
                   ": the same path as destination=; the map needs its own file");
  config::CloneExportConfig c;
  c.source = *source_;
  c.destination = *destination_;
  c.metadata = *metadata_;
  // Without profile.dir (a YAML-only key) the boot profile is recorded next to the metadata.
  c.settings.profile.file = config::profile_file_beside(c.metadata);
  e.name = export_name_.value_or(stem_of(*destination_));
  e.location = "destination=" + *destination_;
  e.clone = c;
  return e;
}

void PluginKeys::apply_overrides(config::ExportConfig& e) const {
  if (description_) e.description = *description_;
  if (read_only_) e.read_only = *read_only_;
  if (!e.clone) {
    for (const config::CloneSetting& setting : config::clone_settings())
      if (given(setting))
        throw KeyError(std::string(setting.plugin_key) +
                       "=: applies to clone exports only; export '" + e.name +
                       "' is a plain export of " + e.path);
    return;
  }
  config::CloneExportConfig& c = *e.clone;
  c.settings.name = e.name;
  c.settings.description = e.description;
  c.settings.read_only = e.read_only;
  for (const auto& [setting, value] : clone_settings_) setting->store(c, value);
}

// The rules between settings (the clone schema's, as for YAML), re-checked after the
// overrides; the message names a key the user gave, or the one from the file it clashes with.
void PluginKeys::check_clone_settings(const config::ExportConfig& e) const {
  auto given = [this](const config::CloneSetting& setting) { return this->given(setting); };
  if (auto conflict =
          config::find_clone_settings_conflict(*e.clone, given, config::KeySyntax::plugin))
    throw KeyError(std::string(conflict->blamed->plugin_key) + ": " + conflict->problem);
}

PluginSettings PluginKeys::complete() const {
  PluginSettings out;
  if (config_file_) {
    config::ServerConfig server = load_config_file();
    out.export_config = choose_export(server);
    // The process-wide parts of the file that still mean something inside nbdkit (listen,
    // tls and the other exports are nbdkit's business or not ours).
    out.control = server.control;
    out.threads = server.threads;
    out.blocking_threads = server.blocking_threads;
    if (server.log_level) out.log_level = *server.log_level;
  } else {
    out.export_config = export_from_inline_keys();
  }
  apply_overrides(out.export_config);
  if (out.export_config.clone) check_clone_settings(out.export_config);
  if (control_) out.control = *control_;
  if (threads_) out.threads = *threads_;
  if (blocking_threads_) out.blocking_threads = *blocking_threads_;
  if (log_level_) out.log_level = *log_level_;
  return out;
}

}  // namespace hydrate::nbdkit_plugin
