#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace hydrate::cli {

std::string human_bytes(double bytes);    // "4.52 GiB"
std::string human_duration(double secs);  // "1h02m", "3m07s", "12s"
// Two human lines for one export of a status reply; `bar_width` 0 leaves the bar out.
std::string format_export_status(const nlohmann::json& e, int bar_width);

}  // namespace hydrate::cli
