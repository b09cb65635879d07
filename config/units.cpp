#include "config/units.h"

#include <charconv>
#include <limits>

namespace hydrate::config {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The leading decimal digits of `text` as a number; `rest` gets what follows them.
std::optional<uint64_t> leading_number(std::string_view text, std::string_view& rest) {
  text = trim(text);
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data()) return std::nullopt;
  rest = trim(std::string_view(end, static_cast<size_t>(text.data() + text.size() - end)));
  return value;
}

std::optional<uint64_t> scaled(uint64_t value, uint64_t factor) {
  if (value != 0 && factor > std::numeric_limits<uint64_t>::max() / value) return std::nullopt;
  return value * factor;
}

}  // namespace

std::optional<uint64_t> parse_size(std::string_view text) {
  std::string_view unit;
  std::optional<uint64_t> value = leading_number(text, unit);
  if (!value) return std::nullopt;
  struct Unit {
    std::string_view name;
    unsigned shift;
  };
  static constexpr Unit kUnits[] = {{"", 0},     {"B", 0},    {"KiB", 10},
                                    {"MiB", 20}, {"GiB", 30}, {"TiB", 40}};
  for (const Unit& u : kUnits)
    if (unit == u.name) return scaled(*value, uint64_t{1} << u.shift);
  return std::nullopt;
}

std::optional<uint64_t> parse_rate(std::string_view text) {
  text = trim(text);
  if (text.ends_with("/s")) text.remove_suffix(2);
  return parse_size(text);
}

std::optional<uint64_t> parse_percent(std::string_view text) {
  std::string_view unit;
  std::optional<uint64_t> value = leading_number(text, unit);
  if (!value || *value > 100 || !(unit.empty() || unit == "%")) return std::nullopt;
  return value;
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  std::string_view unit;
  std::optional<uint64_t> value = leading_number(text, unit);
  if (!value) return std::nullopt;
  struct Unit {
    std::string_view name;
    uint64_t millis;
  };
  static constexpr Unit kUnits[] = {{"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}};
  if (unit.empty()) {
    if (*value == 0) return std::chrono::milliseconds(0);
    return std::nullopt;
  }
  for (const Unit& u : kUnits) {
    if (unit != u.name) continue;
    std::optional<uint64_t> millis = scaled(*value, u.millis);
    if (!millis || *millis > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return std::nullopt;
    return std::chrono::milliseconds(static_cast<int64_t>(*millis));
  }
  return std::nullopt;
}

std::string format_size(uint64_t bytes) {
  static constexpr std::string_view kNames[] = {"TiB", "GiB", "MiB", "KiB"};
  static constexpr unsigned kShifts[] = {40, 30, 20, 10};
  for (size_t i = 0; i < 4; ++i) {
    uint64_t unit = uint64_t{1} << kShifts[i];
    if (bytes != 0 && bytes % unit == 0)
      return std::to_string(bytes / unit) + std::string(kNames[i]);
  }
  return std::to_string(bytes) + "B";
}

std::string format_duration(std::chrono::milliseconds duration) {
  int64_t ms = duration.count();
  if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms != 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

}  // namespace hydrate::config
