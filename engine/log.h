#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>

// Structured logs: one line per event, `key=value` pairs after the event name, levels honoured.
//   2026-11-21T08:00:00.123Z info commit export=vm1 regions=12 generation=7
namespace hydrate::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3 };

struct Field {
  std::string_view key;
  std::string value;

  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const std::string& v) : key(k), value(v) {}
  Field(std::string_view k, const char* v) : key(k), value(v) {}
  Field(std::string_view k, bool v) : key(k), value(v ? "true" : "false") {}
  template <typename T>
    requires std::is_arithmetic_v<T>
  Field(std::string_view k, T v) : key(k), value(std::to_string(v)) {}
};

void set_level(Level level);
Level level();
inline bool enabled(Level l) { return l >= level(); }
std::string_view level_name(Level l);

// Where finished lines go. The default writes to stderr; the nbdkit plugin routes to nbdkit.
using Sink = std::function<void(Level, std::string_view line)>;
void set_sink(Sink sink);

void write(Level level, std::string_view event, std::initializer_list<Field> fields);

inline void debug(std::string_view event, std::initializer_list<Field> fields = {}) {
  if (enabled(Level::debug)) write(Level::debug, event, fields);
}
inline void info(std::string_view event, std::initializer_list<Field> fields = {}) {
  if (enabled(Level::info)) write(Level::info, event, fields);
}
inline void warn(std::string_view event, std::initializer_list<Field> fields = {}) {
  if (enabled(Level::warn)) write(Level::warn, event, fields);
}
inline void error(std::string_view event, std::initializer_list<Field> fields = {}) {
  if (enabled(Level::error)) write(Level::error, event, fields);
}

}  // namespace hydrate::log
