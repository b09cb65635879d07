#include "cli/meta_report.h"

#include <cstdio>
#include <ctime>
#include <string_view>
#include <vector>

namespace hydrate::cli {

namespace {

namespace fmt = metadata_format;
using json = nlohmann::json;

std::string n(uint64_t value) {
  return std::to_string(value);
}

std::string hex32(uint32_t value) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08x", value);
  return text;
}

std::string percent(uint64_t part, uint64_t whole) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f%%", whole ? 100.0 * part / whole : 100.0);
  return text;
}

// "2026-11-21T08:00:00.123Z"
std::string utc_time(uint64_t unix_ms) {
  std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[80];
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<unsigned>(unix_ms % 1000));
  return text;
}

std::string flag_names(uint32_t flags) {
  std::vector<std::string_view> names;
  if (flags & kMetaFlagComplete) names.push_back("complete");
  if (flags & kMetaFlagSourceDiscarded) names.push_back("source-discarded");
  if (flags & ~fmt::kKnownFlags) names.push_back("unknown");
  if (names.empty()) return "none";
  std::string text(names[0]);
  for (size_t i = 1; i < names.size(); ++i) {
    text.push_back(',');
    text.append(names[i]);
  }
  return text;
}

bool has_fields(const fmt::DecodedSlot& slot) {
  return slot.status == fmt::SlotStatus::valid || slot.status == fmt::SlotStatus::bad_checksum ||
         slot.status == fmt::SlotStatus::inconsistent;
}

// Runs of hydrated regions as (first region, count).
template <typename Visit>
void for_each_hydrated_run(const RegionMap& map, Visit visit) {
  for (uint64_t r = map.find_first_set(0); r < map.region_count();) {
    uint64_t run = map.run_length(r, map.region_count() - r);
    visit(r, run);
    r = map.find_first_set(r + run);
  }
}

}  // namespace

std::string check_line(const MetadataReport& report) {
  const RegionMap& map = *report.map;
  const fmt::Superblock& sb =
      report.slots[static_cast<size_t>(report.summary.active_slot)].superblock;
  std::string line = report.path + ": ok: clone " + fmt::format_uuid(sb.clone_uuid) +
                     ", generation " + n(report.summary.generation) + " in slot " +
                     n(static_cast<uint64_t>(report.summary.active_slot)) + ", source \"" +
                     report.geometry.source_identity + "\" of " + n(report.geometry.source_size) +
                     " bytes, destination " + n(report.geometry.destination_size) +
                     " bytes, region size " + n(report.geometry.region_size) + ", hydrated " +
                     n(map.hydrated_regions()) + "/" + n(map.region_count()) + " (" +
                     percent(map.hydrated_regions(), map.region_count()) + "), flags " +
                     flag_names(report.summary.flags);
  const fmt::DecodedSlot& other = report.slots[static_cast<size_t>(1 - report.summary.active_slot)];
  if (other.status != fmt::SlotStatus::valid)
    line += " (other slot " + n(static_cast<uint64_t>(1 - report.summary.active_slot)) + ": " +
            other.problem + ")";
  return line;
}

std::string dump_text(const MetadataReport& report, bool regions) {
  std::string out = "metadata: " + report.path + " (" + n(report.device_size) + " bytes)\n";
  if (report.load.ok())
    out += "active slot: " + n(static_cast<uint64_t>(report.summary.active_slot)) + "\n";
  else
    out += "active slot: none: " + report.load.message + "\n";
  if (report.slots_read) {
    for (size_t i = 0; i < report.slots.size(); ++i) {
      const fmt::DecodedSlot& slot = report.slots[i];
      out += "slot " + n(i) + ": " + fmt::to_string(slot.status);
      if (!slot.problem.empty()) out += " (" + slot.problem + ")";
      out += "\n";
      if (slot.status == fmt::SlotStatus::unsupported_version)
        out += "  version:             " + n(slot.superblock.version) + "\n";
      if (!has_fields(slot)) continue;
      const fmt::Superblock& sb = slot.superblock;
      out += "  version:             " + n(sb.version) + "\n";
      out += "  generation:          " + n(sb.generation) + "\n";
      out += "  checksum:            stored " + hex32(slot.stored_checksum) + ", computed " +
             hex32(slot.computed_checksum) + "\n";
      out += "  clone uuid:          " + fmt::format_uuid(sb.clone_uuid) + "\n";
      out += "  source identity:     " + sb.source_identity + "\n";
      out += "  source size:         " + n(sb.source_size) + "\n";
      out += "  destination size:    " + n(sb.destination_size) + "\n";
      out += "  region size:         " + n(sb.region_size) + "\n";
      out += "  region count:        " + n(sb.region_count) + "\n";
      out += "  committed regions:   " + n(sb.committed_regions) + "\n";
      out += "  flags:               " + flag_names(sb.flags) + "\n";
      out += "  commit time:         " + utc_time(sb.commit_time_unix_ms) + "\n";
      out += "  bitmap:              " + n(sb.bitmap_length) + " bytes at offset " +
             n(sb.bitmap_offset) + "\n";
    }
  }
  if (report.map) {
    const RegionMap& map = *report.map;
    out += "hydrated: " + n(map.hydrated_regions()) + " of " + n(map.region_count()) +
           " regions (" + percent(map.hydrated_regions(), map.region_count()) + ")\n";
    if (regions) {
      out += "hydrated ranges:\n";
      for_each_hydrated_run(map, [&](uint64_t first, uint64_t count) {
        ByteRange start = map.region_range(first);
        ByteRange last = map.region_range(first + count - 1);
        out += "  regions " + n(first) + "-" + n(first + count - 1) + ": bytes " + n(start.offset) +
               "-" + n(last.end() - 1) + "\n";
      });
    }
  }
  return out;
}

json dump_json(const MetadataReport& report, bool regions) {
  json out;
  out["path"] = report.path;
  out["device_size"] = report.device_size;
  out["valid"] = report.load.ok();
  out["error"] = report.load.ok() ? json(nullptr) : json(report.load.message);
  out["active_slot"] = report.load.ok() ? json(report.summary.active_slot) : json(nullptr);
  out["slots"] = json::array();
  if (report.slots_read) {
    for (size_t i = 0; i < report.slots.size(); ++i) {
      const fmt::DecodedSlot& slot = report.slots[i];
      json s;
      s["index"] = i;
      s["status"] = fmt::to_string(slot.status);
      s["problem"] = slot.problem;
      if (slot.status == fmt::SlotStatus::unsupported_version)
        s["version"] = slot.superblock.version;
      if (has_fields(slot)) {
        const fmt::Superblock& sb = slot.superblock;
        s["version"] = sb.version;
        s["generation"] = sb.generation;
        s["stored_checksum"] = slot.stored_checksum;
        s["computed_checksum"] = slot.computed_checksum;
        s["clone_uuid"] = fmt::format_uuid(sb.clone_uuid);
        s["source_identity"] = sb.source_identity;
        s["source_size"] = sb.source_size;
        s["destination_size"] = sb.destination_size;
        s["region_size"] = sb.region_size;
        s["region_count"] = sb.region_count;
        s["committed_regions"] = sb.committed_regions;
        s["flags"] = sb.flags;
        s["flag_names"] = flag_names(sb.flags);
        s["commit_time_unix_ms"] = sb.commit_time_unix_ms;
        s["commit_time"] = utc_time(sb.commit_time_unix_ms);
        s["bitmap_offset"] = sb.bitmap_offset;
        s["bitmap_length"] = sb.bitmap_length;
      }
      out["slots"].push_back(std::move(s));
    }
  }
  if (report.map) {
    const RegionMap& map = *report.map;
    out["region_count"] = map.region_count();
    out["hydrated_regions"] = map.hydrated_regions();
    out["hydrated_percent"] =
        map.region_count() ? 100.0 * map.hydrated_regions() / map.region_count() : 100.0;
    if (regions) {
      json ranges = json::array();
      for_each_hydrated_run(map, [&](uint64_t first, uint64_t count) {
        ByteRange start = map.region_range(first);
        ByteRange last = map.region_range(first + count - 1);
        ranges.push_back({{"first_region", first},
                          {"regions", count},
                          {"offset", start.offset},
                          {"length", last.end() - start.offset}});
      });
      out["hydrated_ranges"] = std::move(ranges);
    }
  }
  return out;
}

}  // namespace hydrate::cli
