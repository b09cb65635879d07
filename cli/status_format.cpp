#include "cli/status_format.h"

#include <chrono>
#include <cmath>
#include <cstdio>

namespace hydrate::cli {

std::string human_bytes(double bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int u = 0;
  while (bytes >= 1024 && u < 5) {
    bytes /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", bytes, units[u]);
  return buf;
}

std::string human_duration(double secs) {
  if (secs < 0 || !std::isfinite(secs)) return "?";
  auto s = static_cast<long long>(std::llround(secs));
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", s / 3600, (s % 3600) / 60);
  else if (s >= 60)
    std::snprintf(buf, sizeof buf, "%lldm%02llds", s / 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%llds", s);
  return buf;
}

std::string format_export_status(const nlohmann::json& e, int bar_width) {
  std::string name = e.value("name", "?");
  std::string state = e.value("state", "?");
  char line[512];
  if (e.value("type", "") != "clone") {
    std::snprintf(line, sizeof line, "%-12s %-10s %s%s\n", name.c_str(), state.c_str(),
                  human_bytes(e.value("size", 0.0)).c_str(),
                  e.value("read_only", false) ? " (read-only)" : "");
    return line;
  }
  double percent = e.value("percent", 0.0);
  std::string bar;
  if (bar_width > 0) {
    int filled = static_cast<int>(std::floor(percent / 100.0 * bar_width));
    bar = "[" + std::string(filled, '#') + std::string(bar_width - filled, '-') + "] ";
  }
  // The copy in data bytes first (what is left to move and when it will be done), then the
  // regions, which also count holes hydrated without moving data.
  const double size = e.value("size", 0.0);
  const double data = e.value("data_bytes", size);
  const double remaining = e.value("data_remaining_bytes", size - e.value("hydrated_bytes", 0.0));
  const double data_rate = e.value("data_rate_bytes_per_second", 0.0);
  std::string eta = e["eta_seconds"].is_null() ? "?" : human_duration(e["eta_seconds"].get<double>());
  if (state == "complete") eta = "-";
  const char* bound = e.value("allocation_scanned", true) ? "" : "up to ";
  std::snprintf(line, sizeof line,
                "%-12s %-10s %s%5.1f%% of %s%s data, %s to fetch at %s/s, ETA %s; "
                "regions %.0f%% (%s / %s)\n",
                name.c_str(), state.c_str(), bar.c_str(), percent, bound, human_bytes(data).c_str(),
                human_bytes(remaining).c_str(), human_bytes(data_rate).c_str(), eta.c_str(),
                e.value("regions_percent", percent),
                human_bytes(e.value("hydrated_bytes", 0.0)).c_str(), human_bytes(size).c_str());
  std::string out = line;
  const auto& src = e["source"];
  std::string commit = "never";
  if (int64_t ms = e.value("last_commit_unix_ms", int64_t{0}); ms > 0) {
    auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    char ago[64];
    std::snprintf(ago, sizeof ago, "%.1f s ago", static_cast<double>(now - ms) / 1000.0);
    commit = ago;
  }
  std::snprintf(line, sizeof line,
                "%-12s in flight %s (window %s), source %s, %d conn, %llu errors, "
                "last commit %s (gen %llu)\n",
                "", human_bytes(e.value("inflight_bytes", 0.0)).c_str(),
                human_bytes(e.value("window_bytes", 0.0)).c_str(),
                src.value("connected", false) ? "connected" : "disconnected",
                src.value("connections", 0),
                static_cast<unsigned long long>(e.value("hydration_errors", uint64_t{0}) +
                                                src.value("read_errors", uint64_t{0})),
                commit.c_str(), static_cast<unsigned long long>(e.value("generation", uint64_t{0})));
  out += line;
  if (e.contains("reason")) out += std::string(13, ' ') + "reason: " + e["reason"].get<std::string>() + "\n";
  return out;
}

}  // namespace hydrate::cli
