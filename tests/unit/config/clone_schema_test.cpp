#include "config/clone_schema.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "engine/region_size.h"

namespace hydrate::config {
namespace {

using std::chrono::milliseconds;

#define EXPECT_HAS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)

const CloneSetting& plugin_setting(std::string_view key) {
  const CloneSetting* s = find_plugin_setting(key);
  if (!s) throw std::runtime_error("no setting " + std::string(key));
  return *s;
}

// A value of the kind `s` takes, inside its range and rule, that is not the default.
SettingValue other_value(const CloneSetting& s) {
  SettingValue current = s.load(CloneExportConfig{});
  switch (s.kind) {
    case SettingKind::boolean:
      return !std::get<bool>(current);
    case SettingKind::duration:
      return milliseconds(s.min);
    case SettingKind::rate:
      return uint64_t{12345};
    case SettingKind::size:
    case SettingKind::count:
      return std::get<uint64_t>(current) == s.max ? s.min : s.max;
  }
  return current;
}

// `text` with every line break and the indentation after it turned into one space.
std::string unwrapped(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\n') {
      out += text[i];
      continue;
    }
    while (i + 1 < text.size() && text[i + 1] == ' ') ++i;
    out += ' ';
  }
  return out;
}

TEST(CloneSchema, NamesAreUniqueAndThePluginAcceptsBothSpellings) {
  std::set<std::string> yaml, plugin;
  for (const CloneSetting& s : clone_settings()) {
    EXPECT_TRUE(yaml.insert(s.path(KeySyntax::yaml)).second) << s.yaml_key;
    EXPECT_TRUE(plugin.insert(std::string(s.plugin_key)).second) << s.plugin_key;
    EXPECT_EQ(s.plugin_key.find('_'), std::string_view::npos) << s.plugin_key;
    EXPECT_EQ(s.yaml_key.find('-'), std::string_view::npos) << s.yaml_key;
    std::string underscored(s.plugin_key);
    for (char& c : underscored)
      if (c == '-') c = '_';
    EXPECT_EQ(find_plugin_setting(s.plugin_key), &s);
    EXPECT_EQ(find_plugin_setting(underscored), &s);
  }
  EXPECT_EQ(find_plugin_setting("region-sizes"), nullptr);
  EXPECT_EQ(find_plugin_setting("source"), nullptr);  // not a tunable setting
  EXPECT_EQ(plugin_setting("hydration").path(KeySyntax::yaml), "hydration.enabled");
  EXPECT_EQ(plugin_setting("max_inflight").path(KeySyntax::yaml), "hydration.max_inflight");
}

TEST(CloneSchema, EachSettingFillsItsOwnMember) {
  for (const CloneSetting& s : clone_settings()) {
    CloneExportConfig c;
    SettingValue v = other_value(s);
    s.store(c, v);
    EXPECT_EQ(s.load(c), v) << s.yaml_key;
    // Nothing else moved.
    for (const CloneSetting& other : clone_settings()) {
      if (&other != &s) {
        EXPECT_EQ(other.load(c), other.load(CloneExportConfig{})) << other.yaml_key;
      }
    }
  }
  CloneExportConfig c;
  plugin_setting("batch").store(c, uint64_t{8} << 20);
  plugin_setting("source-connections").store(c, uint64_t{7});
  plugin_setting("commit-interval").store(c, milliseconds(250));
  EXPECT_EQ(c.settings.hydration.batch_bytes, 8u << 20);
  EXPECT_EQ(c.source_connections, 7u);
  EXPECT_EQ(c.settings.commit_interval, milliseconds(250));
}

TEST(CloneSchema, TheRegionSizeRuleIsTheEngines) {
  const CloneSetting& region = plugin_setting("region-size");
  EXPECT_EQ(region.min, kMinRegionSize);
  EXPECT_EQ(region.max, kMaxRegionSize);
  for (uint64_t size : {4096u, 65536u, 96u << 10, 1u << 30})
    EXPECT_EQ(region.rule_problem(size).empty(), valid_region_size(size)) << size;
  EXPECT_EQ(region.rule_problem(96 << 10),
            "not a power of two; expected a power of two from 4KiB to 1GiB");
  EXPECT_EQ(plugin_setting("batch").rule_problem(96 << 10), "");
  EXPECT_EQ(plugin_setting("commit-interval").expected_range(), "1ms to 1h");
  EXPECT_EQ(plugin_setting("source-connections").expected_range(), "a whole number from 1 to 64");
}

TEST(CloneSchema, YamlKeysPerMap) {
  EXPECT_EQ(clone_yaml_sections(), (std::vector<std::string_view>{"hydration", "profile"}));
  std::vector<std::string_view> top = clone_yaml_keys("");
  EXPECT_EQ(top.front(), "region_size");
  EXPECT_EQ(top.back(), "profile");
  EXPECT_EQ(clone_yaml_keys("profile"),
            (std::vector<std::string_view>{"record", "record_limit", "record_time"}));
  EXPECT_EQ(clone_yaml_keys("hydration"),
            (std::vector<std::string_view>{"enabled", "batch", "max_inflight", "min_share", "rate"}));
}

TEST(CloneSchema, ConflictsBlameAKeyTheUserGave) {
  auto given_only = [](std::set<std::string_view> keys) {
    return [keys](const CloneSetting& s) { return keys.contains(s.plugin_key); };
  };
  CloneExportConfig c;
  c.source = SourceSpec::uri("nbd://h/e");
  EXPECT_FALSE(find_clone_settings_conflict(c, given_only({}), KeySyntax::plugin));
  c.settings.region_size = 1 << 20;  // fetch_window stays 128KiB
  auto conflict = find_clone_settings_conflict(c, given_only({"region-size"}), KeySyntax::plugin);
  ASSERT_TRUE(conflict);
  EXPECT_EQ(conflict->blamed, &plugin_setting("region-size"));
  EXPECT_EQ(conflict->problem,
            "fetch-window (128KiB) is smaller than region-size (1MiB); a fetch must cover at "
            "least one region");
  conflict =
      find_clone_settings_conflict(c, given_only({"region-size", "fetch-window"}), KeySyntax::yaml);
  ASSERT_TRUE(conflict);
  EXPECT_EQ(conflict->blamed, &plugin_setting("fetch-window"));
  EXPECT_HAS(conflict->problem, "fetch_window (128KiB) is smaller than region_size (1MiB)");

  // Region size 0 is the recorded one, unknown here: nothing to compare with.
  c = CloneExportConfig{};
  c.settings.region_size = 0;
  c.settings.fetch_window = 4096;
  c.settings.hydration.batch_bytes = 4096;
  c.settings.hydration.max_inflight_bytes = 4096;
  EXPECT_FALSE(find_clone_settings_conflict(c, given_only({}), KeySyntax::plugin));

  c = CloneExportConfig{};
  c.settings.hydration.max_inflight_bytes = 1 << 20;
  conflict = find_clone_settings_conflict(c, given_only({"max-inflight"}), KeySyntax::plugin);
  ASSERT_TRUE(conflict);
  EXPECT_EQ(conflict->blamed, &plugin_setting("max-inflight"));

  c = CloneExportConfig{};
  c.source = SourceSpec::path("/srv/base.img");
  c.settings.discard_source_after_commit = true;
  conflict = find_clone_settings_conflict(c, given_only({}), KeySyntax::plugin);
  ASSERT_TRUE(conflict);
  EXPECT_EQ(conflict->blamed, &plugin_setting("discard-source-after-commit"));
  EXPECT_HAS(conflict->problem, "needs an NBD source; the file source /srv/base.img");
  c.source = SourceSpec::uri("nbd://h/e");
  EXPECT_FALSE(find_clone_settings_conflict(c, given_only({}), KeySyntax::plugin));
}

TEST(CloneSchema, PluginHelpListsEverySettingWithRangeAndDefault) {
  std::string help = "\n" + clone_settings_plugin_help();
  for (const CloneSetting& s : clone_settings())
    EXPECT_HAS(help, "\n" + std::string(s.plugin_key) + "=<" + std::string(s.placeholder()) + ">");
  EXPECT_HAS(help, "\nregion-size=<SIZE>      unit of validity");
  std::istringstream lines(help);
  for (std::string line; std::getline(lines, line);) EXPECT_LE(line.size(), 88u) << line;
  // The phrases below may be wrapped anywhere.
  help = unwrapped(help);
  EXPECT_HAS(help, "a power of two from 4KiB to 32MiB, at least region-size (default 128KiB)");
  EXPECT_HAS(help, "(default: the size the metadata recorded, else 64KiB)");
  EXPECT_HAS(help, "(default 0 = unlimited)");
  EXPECT_HAS(help, "1ms to 1h (default 1s)");
}

TEST(CloneSchema, ReferenceNamesBothSpellings) {
  std::string doc = clone_settings_reference();
  for (const CloneSetting& s : clone_settings()) {
    EXPECT_HAS(doc, "clone." + s.path(KeySyntax::yaml) + ": ");
    EXPECT_HAS(
        doc, "\nnbdkit: " + std::string(s.plugin_key) + "=" + std::string(s.placeholder()) + "\n");
  }
  EXPECT_HAS(doc, "at least region_size");
  std::istringstream lines(doc);
  for (std::string line; std::getline(lines, line);) EXPECT_LE(line.size(), 79u) << line;
}

// The example configuration shows every clone setting, so it stays a complete reference.
TEST(CloneSchema, ExampleConfigurationShowsEverySetting) {
  std::filesystem::path example =
      std::filesystem::path(__FILE__).parent_path() / "../../../config/hydrate.example.yaml";
  std::ifstream in(example);
  std::ostringstream text;
  text << in.rdbuf();
  for (const CloneSetting& s : clone_settings())
    EXPECT_HAS(text.str(), std::string(s.yaml_key) + ":");
}

}  // namespace
}  // namespace hydrate::config
