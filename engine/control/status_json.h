#pragma once

#include <nlohmann/json.hpp>

#include "engine/clone/clone_status.h"
#include "engine/export.h"

namespace hydrate {

// The JSON shapes of `hydrate status --json` (documented in docs/operations.md).
nlohmann::json clone_status_json(const CloneStatus& status);
nlohmann::json plain_export_json(const ExportInfo& info);

}  // namespace hydrate
