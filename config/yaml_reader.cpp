#include "config/yaml_reader.h"

#include <charconv>
#include <set>

#include "config/units.h"

namespace hydrate::config {
namespace {

std::string kind_of(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
      return "nothing";
    case YAML::NodeType::Null:
      return "an empty value";
    case YAML::NodeType::Scalar:
      return "a scalar";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
  }
  return "something else";
}

std::string joined(std::span<const std::string_view> words) {
  std::string out;
  for (std::string_view w : words) {
    if (!out.empty()) out += ", ";
    out += w;
  }
  return out;
}

}  // namespace

void YamlReader::fail_at(const YAML::Mark& mark, std::string_view path,
                         std::string_view problem) const {
  std::string message = file_;
  if (!mark.is_null() && mark.line >= 0)
    message += ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
  message += ": ";
  if (!path.empty()) {
    message += path;
    message += ": ";
  }
  message += problem;
  throw ConfigError(message);
}

void YamlReader::fail(const YAML::Node& node, std::string_view path,
                      std::string_view problem) const {
  fail_at(node.IsDefined() ? node.Mark() : YAML::Mark::null_mark(), path, problem);
}

std::string YamlReader::shown(const YAML::Node& node) {
  if (node.IsScalar()) return "'" + node.Scalar() + "'";
  return kind_of(node);
}

std::string YamlReader::item(std::string_view path, size_t index) {
  return std::string(path) + "[" + std::to_string(index) + "]";
}

std::string YamlReader::key(std::string_view path, std::string_view key) {
  if (path.empty()) return std::string(key);
  return std::string(path) + "." + std::string(key);
}

void YamlReader::check_map(const YAML::Node& node, std::string_view path,
                           std::span<const std::string_view> known) const {
  if (!node.IsMap())
    fail(node, path, "expected a map with keys " + joined(known) + ", found " + kind_of(node));
  std::set<std::string> seen;
  for (auto it = node.begin(); it != node.end(); ++it) {
    // A copy: the iterator hands out a temporary pair, a reference into it would dangle.
    const YAML::Node k = it->first;
    if (!k.IsScalar()) fail(k, path, "keys must be plain names, found " + kind_of(k));
    const std::string& name = k.Scalar();
    bool ok = false;
    for (std::string_view candidate : known) ok = ok || candidate == name;
    if (!ok)
      fail(k, key(path, name),
           "unknown key; " + (path.empty() ? std::string("top-level") : std::string(path)) +
               " accepts " + joined(known));
    if (!seen.insert(name).second) fail(k, key(path, name), "duplicate key");
  }
}

YAML::Node YamlReader::require(const YAML::Node& map, std::string_view path,
                               std::string_view name) const {
  YAML::Node value = map[std::string(name)];
  if (!value.IsDefined()) fail(map, path, "missing required key '" + std::string(name) + "'");
  if (value.IsNull()) fail(value, key(path, name), "needs a value");
  return value;
}

std::string YamlReader::scalar(const YAML::Node& node, std::string_view path,
                               std::string_view expected) const {
  if (!node.IsScalar())
    fail(node, path, "expected " + std::string(expected) + ", found " + kind_of(node));
  return node.Scalar();
}

std::string YamlReader::string(const YAML::Node& node, std::string_view path) const {
  return scalar(node, path, "a string");
}

bool YamlReader::boolean(const YAML::Node& node, std::string_view path) const {
  std::string text = scalar(node, path, "true or false");
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  fail(node, path, shown(node) + " is not a boolean; expected true or false");
}

uint64_t YamlReader::integer(const YAML::Node& node, std::string_view path, uint64_t min,
                             uint64_t max) const {
  std::string range = "a whole number from " + std::to_string(min) + " to " + std::to_string(max);
  std::string text = scalar(node, path, range);
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < min || value > max)
    fail(node, path, shown(node) + " is out of range; expected " + range);
  return value;
}

uint64_t YamlReader::size(const YAML::Node& node, std::string_view path, uint64_t min,
                          uint64_t max) const {
  std::string text = scalar(node, path, std::string(kSizeForm));
  std::optional<uint64_t> value = parse_size(text);
  if (!value) fail(node, path, shown(node) + " is not a size; expected " + std::string(kSizeForm));
  if (*value < min || *value > max)
    fail(
        node, path,
        shown(node) + " is out of range; expected " + format_size(min) + " to " + format_size(max));
  return *value;
}

uint64_t YamlReader::rate(const YAML::Node& node, std::string_view path) const {
  std::string text = scalar(node, path, std::string(kRateForm));
  std::optional<uint64_t> value = parse_rate(text);
  if (!value) fail(node, path, shown(node) + " is not a rate; expected " + std::string(kRateForm));
  return *value;
}

std::chrono::milliseconds YamlReader::duration(const YAML::Node& node, std::string_view path,
                                               std::chrono::milliseconds min,
                                               std::chrono::milliseconds max) const {
  std::string text = scalar(node, path, std::string(kDurationForm));
  std::optional<std::chrono::milliseconds> value = parse_duration(text);
  if (!value)
    fail(node, path, shown(node) + " is not a duration; expected " + std::string(kDurationForm));
  if (*value < min || *value > max)
    fail(node, path,
         shown(node) + " is out of range; expected " + format_duration(min) + " to " +
             format_duration(max));
  return *value;
}

}  // namespace hydrate::config
