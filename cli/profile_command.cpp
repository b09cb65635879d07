// `hydrate profile`: show, merge and export boot profiles (docs/profile-format.md) without a
// server. It loads files with the engine's own loader, so it refuses exactly what a clone
// would refuse.
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "cli/command.h"
#include "engine/profile/access_profile_format.h"
#include "engine/profile/prefetch_order.h"

namespace hydrate::cli {
namespace {

constexpr const char* kUsage =
    "usage: hydrate profile <subcommand> …\n"
    "\n"
    "  show FILE [--json] [--entries N]\n"
    "      The header (source identity, source size, region size) and totals in regions and\n"
    "      bytes, then the first N runs in recorded order (default 20).\n"
    "  merge OUT IN...\n"
    "      Write the union of the IN profiles to OUT (atomically): regions in order of first\n"
    "      appearance, the inputs' runs interleaved by recorded position. All inputs must\n"
    "      agree on source size and region size.\n"
    "  export FILE [--format=ranges|json]\n"
    "      The profile's byte ranges in recorded order: one 'OFFSET LENGTH' per line\n"
    "      (ranges, the default) or a JSON list of {offset, length}.\n"
    "\n"
    "Exit status: 0 on success, 1 for a profile that does not load, 2 for usage errors.\n";

constexpr int kExitInvalid = 1;
constexpr int kExitUsage = 2;

int usage_error(const std::string& message) {
  std::fprintf(stderr, "hydrate profile: %s\n(see 'hydrate profile --help')\n", message.c_str());
  return kExitUsage;
}

bool load(const std::string& file, AccessProfile& out) {
  if (std::string why = load_profile(file, out); !why.empty()) {
    std::fprintf(stderr, "hydrate profile: %s\n", why.c_str());
    return false;
  }
  return true;
}

// Byte range of a run, clipped to the source (the last region may be partial).
std::pair<uint64_t, uint64_t> bytes_of(const AccessProfile& p, const ProfileRun& run) {
  uint64_t offset = run.first * p.region_size;
  uint64_t end = std::min(p.source_size, run.end() * p.region_size);
  return {offset, end - offset};
}

uint64_t total_bytes(const AccessProfile& p) {
  uint64_t n = 0;
  for (const ProfileRun& run : p.runs) n += bytes_of(p, run).second;
  return n;
}

int show(const std::vector<std::string>& args) {
  std::string file;
  bool json = false;
  uint64_t entries = 20;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--json") {
      json = true;
    } else if (args[i] == "--entries" && i + 1 < args.size()) {
      try {
        entries = std::stoull(args[++i]);
      } catch (const std::exception&) {
        return usage_error("--entries expects a number, got '" + args[i] + "'");
      }
    } else if (!args[i].empty() && args[i][0] == '-') {
      return usage_error("show: unknown option " + args[i]);
    } else if (file.empty()) {
      file = args[i];
    } else {
      return usage_error("show takes one FILE");
    }
  }
  if (file.empty()) return usage_error("show needs a FILE");
  AccessProfile p;
  if (!load(file, p)) return kExitInvalid;
  if (json) {
    nlohmann::json runs = nlohmann::json::array();
    for (size_t i = 0; i < p.runs.size() && i < entries; ++i) {
      auto [offset, length] = bytes_of(p, p.runs[i]);
      runs.push_back({{"first_region", p.runs[i].first},
                      {"regions", p.runs[i].count},
                      {"offset", offset},
                      {"length", length}});
    }
    nlohmann::json j = {{"file", file},
                        {"source_identity", p.source_identity},
                        {"source_size", p.source_size},
                        {"region_size", p.region_size},
                        {"runs", p.runs.size()},
                        {"regions", p.regions()},
                        {"bytes", total_bytes(p)},
                        {"entries", runs}};
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("profile %s\n", file.c_str());
  std::printf("source identity: %s\n", p.source_identity.c_str());
  std::printf("source size:     %llu\n", static_cast<unsigned long long>(p.source_size));
  std::printf("region size:     %u\n", p.region_size);
  std::printf("recorded:        %llu regions (%llu bytes) in %zu runs\n",
              static_cast<unsigned long long>(p.regions()),
              static_cast<unsigned long long>(total_bytes(p)), p.runs.size());
  for (size_t i = 0; i < p.runs.size() && i < entries; ++i) {
    auto [offset, length] = bytes_of(p, p.runs[i]);
    std::printf("  %zu: regions %llu+%llu  bytes %llu+%llu\n", i,
                static_cast<unsigned long long>(p.runs[i].first),
                static_cast<unsigned long long>(p.runs[i].count),
                static_cast<unsigned long long>(offset), static_cast<unsigned long long>(length));
  }
  if (p.runs.size() > entries) std::printf("  … %zu more runs\n", p.runs.size() - entries);
  return 0;
}

int merge(const std::vector<std::string>& args) {
  if (args.size() < 2) return usage_error("merge needs OUT and at least one IN");
  std::vector<AccessProfile> inputs;
  for (size_t i = 1; i < args.size(); ++i) {
    AccessProfile p;
    if (!load(args[i], p)) return kExitInvalid;
    if (!inputs.empty()) {
      if (std::string why = profile_mismatch(p, inputs[0].source_size, inputs[0].region_size);
          !why.empty()) {
        std::fprintf(stderr, "hydrate profile merge: profile %s: %s (as %s was)\n", args[i].c_str(),
                     why.c_str(), args[1].c_str());
        return kExitInvalid;
      }
    }
    inputs.push_back(std::move(p));
  }
  AccessProfile merged;
  if (std::string why = merge_profiles(inputs, merged); !why.empty()) {
    std::fprintf(stderr, "hydrate profile merge: %s\n", why.c_str());
    return kExitInvalid;
  }
  if (std::string why = write_profile_file(args[0], merged); !why.empty()) {
    std::fprintf(stderr, "hydrate profile merge: %s\n", why.c_str());
    return kExitInvalid;
  }
  std::printf("%s: %llu regions in %zu runs from %zu profiles\n", args[0].c_str(),
              static_cast<unsigned long long>(merged.regions()), merged.runs.size(), inputs.size());
  return 0;
}

int export_ranges(const std::vector<std::string>& args) {
  std::string file;
  std::string format = "ranges";
  for (const std::string& a : args) {
    if (a.rfind("--format=", 0) == 0) {
      format = a.substr(9);
      if (format != "ranges" && format != "json")
        return usage_error("--format expects ranges or json, got '" + format + "'");
    } else if (!a.empty() && a[0] == '-') {
      return usage_error("export: unknown option " + a);
    } else if (file.empty()) {
      file = a;
    } else {
      return usage_error("export takes one FILE");
    }
  }
  if (file.empty()) return usage_error("export needs a FILE");
  AccessProfile p;
  if (!load(file, p)) return kExitInvalid;
  if (format == "json") {
    nlohmann::json out = nlohmann::json::array();
    for (const ProfileRun& run : p.runs) {
      auto [offset, length] = bytes_of(p, run);
      out.push_back({{"offset", offset}, {"length", length}});
    }
    std::printf("%s\n", out.dump().c_str());
    return 0;
  }
  for (const ProfileRun& run : p.runs) {
    auto [offset, length] = bytes_of(p, run);
    std::printf("%llu %llu\n", static_cast<unsigned long long>(offset),
                static_cast<unsigned long long>(length));
  }
  return 0;
}

int run_profile(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) return usage_error("needs a subcommand: show, merge or export");
  if (args[0] == "--help" || args[0] == "-h") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  std::string sub = args[0];
  args.erase(args.begin());
  if (sub == "show") return show(args);
  if (sub == "merge") return merge(args);
  if (sub == "export") return export_ranges(args);
  return usage_error("unknown subcommand '" + sub + "'; expected show, merge or export");
}

}  // namespace

HYDRATE_REGISTER_COMMAND(profile,
                         Command{"profile", "show, merge or export boot profiles", run_profile});

}  // namespace hydrate::cli
