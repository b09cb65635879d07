#include "config/clone_schema.h"

#include <algorithm>
#include <bit>
#include <stdexcept>
#include <type_traits>

#include "config/units.h"
#include "engine/region_size.h"

namespace hydrate::config {
namespace {

using std::chrono::milliseconds;
constexpr uint64_t KiB = 1024;
constexpr uint64_t MiB = 1024 * KiB;
constexpr uint64_t GiB = 1024 * MiB;
constexpr uint64_t kHour = 3'600'000;  // in milliseconds

// The help below says what the engine does with region size 0.
static_assert(kDefaultRegionSize == 64 * KiB);

bool is_power_of_two(uint64_t v) {
  return std::has_single_bit(v);
}

template <typename T>
void assign(T& field, const SettingValue& value) {
  if constexpr (std::is_same_v<T, bool> || std::is_same_v<T, milliseconds>)
    field = std::get<T>(value);
  else
    field = static_cast<T>(std::get<uint64_t>(value));
}

template <typename T>
SettingValue value_of(const T& field) {
  if constexpr (std::is_same_v<T, bool> || std::is_same_v<T, milliseconds>)
    return field;
  else
    return static_cast<uint64_t>(field);
}

// `setting`, filling the member reached from a CloneExportConfig through the member pointers
// `Path` (e.g. &CloneExportConfig::settings, &CloneSettings::hydration, …::batch_bytes).
template <auto... Path>
constexpr CloneSetting filling(CloneSetting setting) {
  setting.store = [](CloneExportConfig& c, const SettingValue& v) { assign((c.*....*Path), v); };
  setting.load = [](const CloneExportConfig& c) { return value_of((c.*....*Path)); };
  return setting;
}

using C = CloneExportConfig;
using S = CloneSettings;
using H = HydrationSettings;
using P = ProfileSettings;

constexpr CloneSetting kSettings[] = {
    filling<&C::settings, &S::region_size>({
        .yaml_key = "region_size",
        .plugin_key = "region-size",
        .kind = SettingKind::size,
        .min = kMinRegionSize,
        .max = kMaxRegionSize,
        .valid = valid_region_size,  // the engine's one region-size rule
        .rule = "a power of two",
        .help = "unit of validity: each bit of the map covers one region",
        .zero_means = "the size the metadata recorded, else 64KiB",
    }),
    filling<&C::settings, &S::fetch_window>({
        .yaml_key = "fetch_window",
        .plugin_key = "fetch-window",
        .kind = SettingKind::size,
        .min = 4 * KiB,
        .max = 32 * MiB,
        .valid = is_power_of_two,
        .rule = "a power of two",
        .help = "a read miss fetches this much (aligned) from the source",
    }),
    filling<&C::settings, &S::copy_on_read>({
        .yaml_key = "copy_on_read",
        .plugin_key = "copy-on-read",
        .kind = SettingKind::boolean,
        .help = "keep what reads fetched",
    }),
    filling<&C::settings, &S::discard_passdown>({
        .yaml_key = "discard_passdown",
        .plugin_key = "discard-passdown",
        .kind = SettingKind::boolean,
        .help = "pass client trims down to the destination",
    }),
    filling<&C::settings, &S::destination_zeroed>({
        .yaml_key = "destination_zeroed",
        .plugin_key = "destination-zeroed",
        .kind = SettingKind::boolean,
        .help = "unhydrated destination bytes are known to read as zero",
    }),
    filling<&C::settings, &S::discard_source_after_commit>({
        .yaml_key = "discard_source_after_commit",
        .plugin_key = "discard-source-after-commit",
        .kind = SettingKind::boolean,
        .help = "trim committed regions on an NBD source",
    }),
    filling<&C::settings, &S::commit_interval>({
        .yaml_key = "commit_interval",
        .plugin_key = "commit-interval",
        .kind = SettingKind::duration,
        .min = 1,
        .max = kHour,
        .help = "how often hydrated regions are made durable",
    }),
    filling<&C::settings, &S::source_timeout>({
        .yaml_key = "source_timeout",
        .plugin_key = "source-timeout",
        .kind = SettingKind::duration,
        .min = 100,
        .max = 24 * kHour,
        .help = "a read waits this long for a lost source, then fails",
    }),
    filling<&C::source_connections>({
        .yaml_key = "source_connections",
        .plugin_key = "source-connections",
        .kind = SettingKind::count,
        .min = 1,
        .max = 64,
        .help = "connections to the source; more than one only if it allows multi-conn",
    }),
    filling<&C::settings, &S::hydration, &H::enabled>({
        .yaml_section = "hydration",
        .yaml_key = "enabled",
        .plugin_key = "hydration",
        .kind = SettingKind::boolean,
        .help = "copy the source in the background from the start",
    }),
    filling<&C::settings, &S::hydration, &H::batch_bytes>({
        .yaml_section = "hydration",
        .yaml_key = "batch",
        .plugin_key = "batch",
        .kind = SettingKind::size,
        .min = 4 * KiB,
        .max = 1 * GiB,
        .help = "largest contiguous background fetch",
    }),
    filling<&C::settings, &S::hydration, &H::max_inflight_bytes>({
        .yaml_section = "hydration",
        .yaml_key = "max_inflight",
        .plugin_key = "max-inflight",
        .kind = SettingKind::size,
        .min = 4 * KiB,
        .max = 64 * GiB,
        .help = "upper bound of the adaptive background window",
    }),
    filling<&C::settings, &S::hydration, &H::min_share_percent>({
        .yaml_section = "hydration",
        .yaml_key = "min_share",
        .plugin_key = "min-share",
        .kind = SettingKind::count,
        .min = 0,
        .max = 100,
        .help = "percent of the in-flight window the background keeps while clients read",
    }),
    filling<&C::settings, &S::hydration, &H::rate_bytes_per_second>({
        .yaml_section = "hydration",
        .yaml_key = "rate",
        .plugin_key = "rate",
        .kind = SettingKind::rate,
        .help = "cap on background hydration, e.g. 100MiB/s",
        .zero_means = "unlimited",
    }),
    // Boot profiles (docs/profile-format.md). The paths (profile.file, hydration.prefetch) are
    // read by each reader itself, like metadata: they resolve relative to its own base.
    filling<&C::settings, &S::profile, &P::record>({
        .yaml_section = "profile",
        .yaml_key = "record",
        .plugin_key = "profile-record",
        .kind = SettingKind::boolean,
        .help = "record the order in which clients first touch regions (a boot profile)",
    }),
    filling<&C::settings, &S::profile, &P::record_limit_bytes>({
        .yaml_section = "profile",
        .yaml_key = "record_limit",
        .plugin_key = "profile-record-limit",
        .kind = SettingKind::size,
        .min = 0,
        .max = 1024 * GiB,
        .help = "stop recording after this many bytes of regions",
    }),
    filling<&C::settings, &S::profile, &P::record_time>({
        .yaml_section = "profile",
        .yaml_key = "record_time",
        .plugin_key = "profile-record-time",
        .kind = SettingKind::duration,
        .min = 0,
        .max = 24 * kHour,
        .help = "stop recording this long after the clone opened",
    }),
};

const CloneSetting& setting_at(std::string_view yaml_path) {
  for (const CloneSetting& s : kSettings)
    if (s.path(KeySyntax::yaml) == yaml_path) return s;
  throw std::logic_error("clone schema: no setting " + std::string(yaml_path));
}

// `smaller` must be at least `larger`, unless `larger` is 0 (a region size not known before
// the clone opens: the recorded one; the engine checks it then).
struct AtLeastRule {
  std::string_view smaller;  // YAML paths
  std::string_view larger;
  std::string_view why;
};
constexpr AtLeastRule kAtLeastRules[] = {
    {"fetch_window", "region_size", "a fetch must cover at least one region"},
    {"hydration.batch", "region_size", "a batch fetches whole regions"},
    {"hydration.max_inflight", "hydration.batch", "expected at least one batch in flight"},
};

// "(default 128KiB)", "(default 0 = unlimited)", "(default: the recorded size, else 64KiB)".
std::string default_text(const CloneSetting& s) {
  SettingValue value = s.load(CloneExportConfig{});
  if (const bool* b = std::get_if<bool>(&value)) return *b ? "(default true)" : "(default false)";
  if (const milliseconds* d = std::get_if<milliseconds>(&value))
    return "(default " + format_duration(*d) + ")";
  uint64_t n = std::get<uint64_t>(value);
  if (n == 0 && !s.zero_means.empty())  // 0 cannot always be written: then say only what it does
    return s.min == 0 ? "(default 0 = " + std::string(s.zero_means) + ")"
                      : "(default: " + std::string(s.zero_means) + ")";
  return "(default " + (s.kind == SettingKind::count ? std::to_string(n) : format_size(n)) + ")";
}

// What a help or reference line says about `s` after its own phrase.
std::string description(const CloneSetting& s, KeySyntax syntax) {
  std::string text(s.help);
  if (std::string range = s.expected_range(); !range.empty()) text += "; " + range;
  for (const AtLeastRule& r : kAtLeastRules)
    if (s.path(KeySyntax::yaml) == r.smaller)
      text += ", at least " + std::string(setting_at(r.larger).name(syntax));
  return text + " " + default_text(s);
}

// `text` wrapped at `width` columns: it starts at `column`, later lines are indented by
// `indent`.
std::string wrapped(std::string_view text, size_t column, size_t indent, size_t width) {
  std::string out;
  bool first = true;
  while (!text.empty()) {
    size_t space = text.find(' ');
    std::string_view word = text.substr(0, space);
    text = space == std::string_view::npos ? std::string_view() : text.substr(space + 1);
    if (!first && column + 1 + word.size() > width) {
      out += "\n" + std::string(indent, ' ');
      column = indent;
    } else if (!first) {
      out += ' ';
      ++column;
    }
    out += word;
    column += word.size();
    first = false;
  }
  return out;
}

}  // namespace

std::string_view CloneSetting::name(KeySyntax syntax) const {
  return syntax == KeySyntax::yaml ? yaml_key : plugin_key;
}

std::string CloneSetting::path(KeySyntax syntax) const {
  if (syntax == KeySyntax::plugin || yaml_section.empty()) return std::string(name(syntax));
  return std::string(yaml_section) + "." + std::string(yaml_key);
}

std::string_view CloneSetting::placeholder() const {
  switch (kind) {
    case SettingKind::size:
      return "SIZE";
    case SettingKind::duration:
      return "DURATION";
    case SettingKind::count:
      return "N";
    case SettingKind::boolean:
      return "BOOL";
    case SettingKind::rate:
      return "RATE";
  }
  return "VALUE";
}

std::string CloneSetting::expected_range() const {
  switch (kind) {
    case SettingKind::size:
      return (rule.empty() ? std::string() : std::string(rule) + " from ") + format_size(min) +
             " to " + format_size(max);
    case SettingKind::duration:
      return format_duration(milliseconds(min)) + " to " + format_duration(milliseconds(max));
    case SettingKind::count:
      return "a whole number from " + std::to_string(min) + " to " + std::to_string(max);
    case SettingKind::boolean:
    case SettingKind::rate:
      return {};
  }
  return {};
}

std::string CloneSetting::rule_problem(uint64_t value) const {
  if (!valid || valid(value)) return {};
  return "not " + std::string(rule) + "; expected " + expected_range();
}

std::span<const CloneSetting> clone_settings() {
  return kSettings;
}

const CloneSetting* find_plugin_setting(std::string_view key) {
  for (const CloneSetting& s : kSettings) {
    bool same = key.size() == s.plugin_key.size();
    for (size_t i = 0; same && i < key.size(); ++i)
      same = key[i] == s.plugin_key[i] || (key[i] == '_' && s.plugin_key[i] == '-');
    if (same) return &s;
  }
  return nullptr;
}

std::vector<std::string_view> clone_yaml_keys(std::string_view section) {
  std::vector<std::string_view> keys;
  auto add = [&](std::string_view k) {
    if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
  };
  for (const CloneSetting& s : kSettings) {
    if (s.yaml_section == section)
      add(s.yaml_key);
    else if (section.empty())
      add(s.yaml_section);
  }
  return keys;
}

std::vector<std::string_view> clone_yaml_sections() {
  std::vector<std::string_view> sections;
  for (std::string_view k : clone_yaml_keys(""))
    for (const CloneSetting& s : kSettings)
      if (s.yaml_section == k) {
        sections.push_back(k);
        break;
      }
  return sections;
}

std::optional<CloneSettingsConflict> find_clone_settings_conflict(
    const CloneExportConfig& clone, const std::function<bool(const CloneSetting&)>& given,
    KeySyntax syntax) {
  for (const AtLeastRule& r : kAtLeastRules) {
    const CloneSetting& smaller = setting_at(r.smaller);
    const CloneSetting& larger = setting_at(r.larger);
    uint64_t value = std::get<uint64_t>(smaller.load(clone));
    uint64_t minimum = std::get<uint64_t>(larger.load(clone));
    if (minimum == 0 || value >= minimum) continue;
    const CloneSetting* blamed = given(smaller) || !given(larger) ? &smaller : &larger;
    return CloneSettingsConflict{blamed, std::string(smaller.name(syntax)) + " (" +
                                             format_size(value) + ") is smaller than " +
                                             std::string(larger.name(syntax)) + " (" +
                                             format_size(minimum) + "); " + std::string(r.why)};
  }
  const CloneSetting& discard = setting_at("discard_source_after_commit");
  if (std::get<bool>(discard.load(clone)) && clone.source.kind == SourceSpec::Kind::path)
    return CloneSettingsConflict{&discard, "needs an NBD source; the file source " +
                                               clone.source.location + " is opened read-only"};
  return std::nullopt;
}

std::string clone_settings_plugin_help() {
  // As the rest of the plugin's help: descriptions from column 24, lines up to 88 columns.
  constexpr size_t kColumn = 24;
  constexpr size_t kWidth = 88;
  std::string out;
  for (const CloneSetting& s : kSettings) {
    std::string key = std::string(s.plugin_key) + "=<" + std::string(s.placeholder()) + ">";
    key.resize(std::max(kColumn, key.size() + 2), ' ');
    out += key + wrapped(description(s, KeySyntax::plugin), key.size(), kColumn, kWidth) + "\n";
  }
  return out;
}

std::string clone_settings_reference() {
  std::string out;
  for (const CloneSetting& s : kSettings) {
    std::string placeholder(s.placeholder());
    out += "clone." + s.path(KeySyntax::yaml) + ": " + placeholder + "\n";
    out += "nbdkit: " + std::string(s.plugin_key) + "=" + placeholder + "\n    ";
    out += wrapped(description(s, KeySyntax::yaml), 4, 4, 79) + "\n";
  }
  out += wrapped(
             "SIZE: 65536, 64KiB, 4MiB, 1GiB. DURATION: 250ms, 1s, 5m, 2h. RATE: a SIZE per "
             "second, e.g. 100MiB/s. BOOL: true or false (nbdkit also yes/no, on/off, 1/0).",
             0, 0, 79) +
         "\n";
  return out;
}

}  // namespace hydrate::config
