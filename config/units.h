#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

// Sizes, rates and durations as people write them in configuration files and on command lines
// (`hydrate serve`, `hydrate ctl set rate=…`). Parsing never throws: a value either parses or
// the caller reports the accepted form below next to what was given.
namespace hydrate::config {

// "65536", "64KiB", "64 KiB", "4MiB", "1GiB", "2TiB", "512B". Binary units only: "64KB" and
// "64K" are refused rather than guessed.
std::optional<uint64_t> parse_size(std::string_view text);
inline constexpr std::string_view kSizeForm =
    "a byte count, or a whole number with B, KiB, MiB, GiB or TiB (e.g. 64KiB)";

// A size per second: "0" (unlimited where the caller allows it), "100MiB", "100MiB/s".
std::optional<uint64_t> parse_rate(std::string_view text);
inline constexpr std::string_view kRateForm =
    "bytes per second: a byte count or a whole number with B, KiB, MiB, GiB or TiB, optionally "
    "followed by /s (e.g. 100MiB/s)";

// A percentage: "25" or "25%", 0 to 100.
std::optional<uint64_t> parse_percent(std::string_view text);
inline constexpr std::string_view kPercentForm = "a whole number from 0 to 100, optionally with %";

// "250ms", "1s", "5m", "2h". A unit is required: "0" alone is accepted, other bare numbers
// are ambiguous and refused.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);
inline constexpr std::string_view kDurationForm =
    "a whole number with ms, s, m or h (e.g. 250ms, 1s, 5m)";

// The shortest exact spelling, for messages and status output: 65536 -> "64KiB",
// 1000 -> "1000B"; 1500ms -> "1500ms", 60000ms -> "1m".
std::string format_size(uint64_t bytes);
std::string format_duration(std::chrono::milliseconds duration);

}  // namespace hydrate::config
