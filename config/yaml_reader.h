#pragma once

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

namespace hydrate::config {

// A configuration the user must fix. The message is one line:
//   hydrate.yaml:12:20: exports[1].clone.region_size: '3KiB' is not a power of two ...
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Typed, strict access to a parsed YAML document. Every accessor takes the node and its key path
// (e.g. "exports[1].clone.region_size") and throws ConfigError naming the file, line, column,
// path, the value found and the form or range accepted.
class YamlReader {
 public:
  explicit YamlReader(std::string file) : file_(std::move(file)) {}

  const std::string& file() const { return file_; }

  [[noreturn]] void fail(const YAML::Node& node, std::string_view path,
                         std::string_view problem) const;
  [[noreturn]] void fail_at(const YAML::Mark& mark, std::string_view path,
                            std::string_view problem) const;

  // `node` must be a map whose keys are all in `known`, each at most once.
  void check_map(const YAML::Node& node, std::string_view path,
                 std::span<const std::string_view> known) const;
  void check_map(const YAML::Node& node, std::string_view path,
                 std::initializer_list<std::string_view> known) const {
    check_map(node, path, std::span<const std::string_view>(known.begin(), known.size()));
  }
  // map[key], which must be present and not null.
  YAML::Node require(const YAML::Node& map, std::string_view path, std::string_view key) const;
  static bool has(const YAML::Node& map, std::string_view key) {
    return map[std::string(key)].IsDefined();
  }

  std::string string(const YAML::Node& node, std::string_view path) const;
  bool boolean(const YAML::Node& node, std::string_view path) const;
  uint64_t integer(const YAML::Node& node, std::string_view path, uint64_t min, uint64_t max) const;
  uint64_t size(const YAML::Node& node, std::string_view path, uint64_t min, uint64_t max) const;
  uint64_t rate(const YAML::Node& node, std::string_view path) const;
  std::chrono::milliseconds duration(const YAML::Node& node, std::string_view path,
                                     std::chrono::milliseconds min,
                                     std::chrono::milliseconds max) const;

  // The scalar as the user wrote it, quoted for a message; or what kind of node it is.
  static std::string shown(const YAML::Node& node);
  // "exports" + 1 -> "exports[1]"; "exports[1]" + "clone" -> "exports[1].clone"
  static std::string item(std::string_view path, size_t index);
  static std::string key(std::string_view path, std::string_view key);

 private:
  std::string scalar(const YAML::Node& node, std::string_view path,
                     std::string_view expected) const;

  std::string file_;
};

}  // namespace hydrate::config
