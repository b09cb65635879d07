#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hydrate::cli {

// Parses a byte count for `hydrate meta` options: decimal digits, optionally followed by one
// binary suffix (K, M, G, T, P, with or without "iB"; "B" for plain bytes). On failure returns
// nothing and sets `error` to a message naming `option` and the text.
std::optional<uint64_t> parse_meta_size(std::string_view text, std::string_view option,
                                        std::string& error);

}  // namespace hydrate::cli
