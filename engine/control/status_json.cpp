#include "engine/control/status_json.h"

namespace hydrate {

nlohmann::json clone_status_json(const CloneStatus& s) {
  nlohmann::json source = {
      {"connected", s.source.connected},
      {"connections", s.source.connections},
      {"bytes_read", s.source.bytes_read},
      {"reads", s.source.reads},
      {"read_errors", s.source.read_errors},
      {"block_status_calls", s.source.block_status_calls},
      {"reconnects", s.source.reconnects},
  };
  if (!s.source.last_error.empty()) source["last_error"] = s.source.last_error;
  nlohmann::json j = {
      {"name", s.name},
      {"type", "clone"},
      {"state", to_string(s.state)},
      {"size", s.size},
      {"region_size", s.region_size},
      {"regions", s.regions},
      {"hydrated_regions", s.hydrated_regions},
      {"hydrated_bytes", s.hydrated_bytes},
      {"committed_regions", s.committed_regions},
      {"regions_percent", s.regions_percent},
      {"allocation_scanned", s.allocation_scanned},
      {"data_bytes", s.data_bytes},
      {"data_hydrated_bytes", s.data_hydrated_bytes},
      {"data_remaining_bytes", s.data_remaining_bytes},
      {"percent", s.percent},
      {"rate_bytes_per_second", s.rate_bytes_per_second},
      {"data_rate_bytes_per_second", s.data_rate_bytes_per_second},
      {"inflight_bytes", s.inflight_bytes},
      {"window_bytes", s.window_bytes},
      {"fetched_bytes", s.fetched_bytes},
      {"zeroed_bytes", s.zeroed_bytes},
      {"on_demand_fetches", s.on_demand_fetches},
      {"hydration_errors", s.hydration_errors},
      {"commits", s.commits},
      {"generation", s.generation},
      {"last_commit_unix_ms", s.last_commit_unix_ms},
      {"hydration",
       {{"enabled", s.hydration.enabled},
        {"batch", s.hydration.batch_bytes},
        {"max_inflight", s.hydration.max_inflight_bytes},
        {"rate", s.hydration.rate_bytes_per_second},
        {"min_share", s.hydration.min_share_percent}}},
      {"source", source},
      {"profile",
       {{"recording", s.profile.recording},
        {"recorded_regions", s.profile.recorded_regions},
        {"file", s.profile.file},
        {"prefetch_regions", s.profile.prefetch_regions},
        {"prefetch_remaining", s.profile.prefetch_remaining}}},
  };
  j["eta_seconds"] = s.eta_seconds >= 0 ? nlohmann::json(s.eta_seconds) : nlohmann::json(nullptr);
  if (!s.reason.empty()) j["reason"] = s.reason;
  return j;
}

nlohmann::json plain_export_json(const ExportInfo& info) {
  return {{"name", info.name},
          {"type", "plain"},
          {"state", "serving"},
          {"size", info.size},
          {"read_only", info.read_only},
          {"description", info.description}};
}

}  // namespace hydrate
