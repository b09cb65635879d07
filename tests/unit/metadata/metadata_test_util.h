#pragma once

#include <memory>
#include <string>

#include "engine/metadata_store.h"
#include "engine/region_map.h"
#include "engine/run_to_completion.h"
#include "tests/support/memory_block_device.h"

namespace hydrate::test {

// 1 GiB at 4 KiB regions: 262144 regions, 4096 bitmap words, 8 bitmap blocks.
inline CloneGeometry small_region_geometry() {
  return CloneGeometry{uint64_t{1} << 30, uint64_t{1} << 30, 4096, "nbd://backup/vm1"};
}

// Runs both phases of a commit the way the clone engine does (minus the destination flush).
inline IoResult commit_transaction(RegionMap& map, MetadataStore& store, uint32_t flags = 0) {
  RegionMap::Transaction transaction = map.begin_commit();
  IoResult result = run_to_completion(store.commit(map, transaction, flags));
  map.finish_commit(std::move(transaction), result.ok());
  return result;
}

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace hydrate::test
