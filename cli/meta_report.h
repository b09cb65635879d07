#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/io_result.h"
#include "engine/metadata_format.h"
#include "engine/metadata_store.h"
#include "engine/region_map.h"

namespace hydrate::cli {

// Everything `hydrate meta check|dump` learned about one metadata file: both slots as they are
// on disk, and what the engine's loader made of them.
struct MetadataReport {
  std::string path;
  uint64_t device_size = 0;
  bool slots_read = false;  // false when the device is too small or unreadable
  std::array<metadata_format::DecodedSlot, 2> slots;
  IoResult load;  // MetadataStore::inspect(): ok, or the refusal the engine would give
  CloneGeometry geometry;
  MetadataSummary summary;
  std::unique_ptr<RegionMap> map;  // set when `load` is ok
};

// `hydrate meta check`: one line.
std::string check_line(const MetadataReport& report);
// `hydrate meta dump`: both slots, the active one, hydration; `regions` adds hydrated ranges.
std::string dump_text(const MetadataReport& report, bool regions);
nlohmann::json dump_json(const MetadataReport& report, bool regions);

}  // namespace hydrate::cli
