#include "cli/meta_size.h"

#include <array>
#include <charconv>
#include <utility>

namespace hydrate::cli {

std::optional<uint64_t> parse_meta_size(std::string_view text, std::string_view option,
                                        std::string& error) {
  auto fail = [&](const std::string& why) -> std::optional<uint64_t> {
    error = std::string(option) + ": '" + std::string(text) + "' " + why;
    return std::nullopt;
  };
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, 10);
  if (end == text.data()) return fail("is not a size (expected digits, e.g. 64K or 10G)");
  if (ec == std::errc::result_out_of_range) return fail("is too large");
  std::string_view suffix = text.substr(static_cast<size_t>(end - text.data()));
  static constexpr std::array<std::pair<char, unsigned>, 5> kUnits = {
      {{'K', 10}, {'M', 20}, {'G', 30}, {'T', 40}, {'P', 50}}};
  unsigned shift = 0;
  if (!suffix.empty() && suffix != "B") {
    bool known = false;
    for (auto [letter, unit_shift] : kUnits) {
      if (suffix[0] != letter && suffix[0] != letter + ('a' - 'A')) continue;
      std::string_view rest = suffix.substr(1);
      if (rest.empty() || rest == "iB" || rest == "B") {
        shift = unit_shift;
        known = true;
      }
      break;
    }
    if (!known) return fail("has an unknown unit (use K, M, G, T or P: powers of 1024)");
  }
  if (shift > 0 && value > (UINT64_MAX >> shift)) return fail("is too large");
  return value << shift;
}

}  // namespace hydrate::cli
