// `hydrate snap`: control the hydrate-snap kernel module (kmod/): in-place snapshots of live block
// devices and their changed-block tracking. Output is JSON on stdout; errors go to stderr.
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/command.h"
#include "cli/snap_control.h"
#include "cli/snap_store.h"

namespace hydrate::cli {

namespace {

using json = nlohmann::json;

constexpr const char* kUsage =
    "usage: hydrate snap <subcommand> [options]\n"
    "\n"
    "  create ORIGIN [--store DEVICE | --store-file PATH [--store-size SIZE]]\n"
    "         [--chunk-size SIZE] [--reset-cbt] [--no-freeze]\n"
    "      Track ORIGIN (a block device) and, with a COW store, take a snapshot that appears\n"
    "      as /dev/hydrate-snapN. Without a store only changed-block tracking runs. On a\n"
    "      tracked device, takes a new snapshot; --reset-cbt restarts the live CBT at that\n"
    "      instant and leaves the old one with the snapshot.\n"
    "  destroy ID|DEVICE [--keep-tracking] [--force]\n"
    "      Drop the snapshot (and stop tracking unless --keep-tracking). --force even while\n"
    "      the snapshot device is open.\n"
    "  list\n"
    "      Every tracked device and its snapshot, as a JSON array.\n"
    "  cbt ID|DEVICE [--snapshot] [--reset]\n"
    "      Changed chunks as byte extents: the live CBT, or with --snapshot the CBT frozen\n"
    "      when the snapshot was taken. --reset clears the live CBT after reading it.\n"
    "  version\n"
    "\n"
    "SIZE takes K, M, G suffixes (powers of 1024). ID is the N of /dev/hydrate-snapN.\n";

struct UsageError : SnapError {
  using SnapError::SnapError;
};

uint64_t parse_size(const std::string& text, const char* option) {
  size_t used = 0;
  uint64_t value = 0;
  try {
    value = std::stoull(text, &used, 10);
  } catch (const std::exception&) {
    throw UsageError(std::string(option) + ": '" + text + "' is not a size");
  }
  std::string_view suffix = std::string_view(text).substr(used);
  unsigned shift = 0;
  if (suffix == "K" || suffix == "k" || suffix == "KiB")
    shift = 10;
  else if (suffix == "M" || suffix == "MiB")
    shift = 20;
  else if (suffix == "G" || suffix == "GiB")
    shift = 30;
  else if (!suffix.empty())
    throw UsageError(std::string(option) + ": unknown size suffix in '" + text + "'");
  return value << shift;
}

uint32_t chunk_shift_of(uint64_t bytes) {
  for (uint32_t shift = HSNAP_MIN_CHUNK_SHIFT; shift <= HSNAP_MAX_CHUNK_SHIFT; ++shift)
    if ((uint64_t{1} << shift) == bytes) return shift;
  throw UsageError("--chunk-size must be a power of two from 4K to 256K, not " +
                   std::to_string(bytes));
}

std::string dev_text(uint32_t encoded) {
  // new_encode_dev(): minor low 8 bits, major, then the rest of the minor.
  unsigned maj = (encoded & 0xfff00) >> 8;
  unsigned min = (encoded & 0xff) | ((encoded >> 12) & 0xfff00);
  return std::to_string(maj) + ":" + std::to_string(min);
}

dev_t dev_of(uint32_t encoded) {
  return makedev((encoded & 0xfff00) >> 8, (encoded & 0xff) | ((encoded >> 12) & 0xfff00));
}

json info_json(const hsnap_info& info) {
  uint64_t chunk = uint64_t{1} << info.chunk_shift;
  json j = {{"id", info.id},
            {"origin", info.origin},
            {"origin_dev", dev_text(info.origin_dev)},
            {"size", info.origin_sectors * 512},
            {"chunk_size", chunk},
            {"cbt_dirty_chunks", info.cbt_dirty_chunks},
            {"cbt_generation", info.cbt_generation}};
  if (info.state & HSNAP_STATE_SNAPSHOT) {
    bool invalid = info.state & HSNAP_STATE_INVALID;
    j["snapshot"] = "/dev/" HYDRATE_SNAP_DISK_PREFIX + std::to_string(info.id);
    j["snapshot_dev"] = dev_text(info.snap_dev);
    j["state"] = invalid ? "invalid" : "valid";
    j["store"] = info.store;
    j["store_chunks"] = info.store_chunks;
    j["store_used_chunks"] = info.store_used_chunks;
    j["snapshot_cbt_chunks"] = info.snap_cbt_chunks;
    if (invalid) {
      j["error"] = std::strerror(-info.error);
      j["reason"] = info.reason;
    }
  } else {
    j["snapshot"] = nullptr;
    j["state"] = "tracking";
  }
  return j;
}

// ID, /dev/hydrate-snapN, or the origin device path.
uint32_t resolve_id(SnapControl& control, const std::string& what) {
  if (!what.empty() && what.find_first_not_of("0123456789") == std::string::npos)
    return static_cast<uint32_t>(std::stoul(what));
  std::string_view name = what;
  if (auto slash = name.rfind('/'); slash != std::string_view::npos) name = name.substr(slash + 1);
  std::string_view prefix = HYDRATE_SNAP_DISK_PREFIX;
  if (name.substr(0, prefix.size()) == prefix && name.size() > prefix.size() &&
      name.substr(prefix.size()).find_first_not_of("0123456789") == std::string_view::npos)
    return static_cast<uint32_t>(std::stoul(std::string(name.substr(prefix.size()))));
  dev_t dev = block_device_number(what, "device");
  for (uint32_t id : control.list()) {
    hsnap_info info = control.info(id);
    if (dev_of(info.origin_dev) == dev || dev_of(info.snap_dev) == dev) return id;
  }
  throw SnapError(what + " is not tracked (see hydrate snap list)");
}

void print(const json& j) {
  std::printf("%s\n", j.dump(2).c_str());
}

int run_create(std::vector<std::string> args) {
  std::string origin, store, store_file;
  uint64_t store_size = 0, chunk_size = 0;
  uint32_t flags = 0;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](const char* option) -> std::string {
      if (i + 1 >= args.size()) throw UsageError(std::string(option) + " needs a value");
      return args[++i];
    };
    if (a == "--store")
      store = value("--store");
    else if (a == "--store-file")
      store_file = value("--store-file");
    else if (a == "--store-size")
      store_size = parse_size(value("--store-size"), "--store-size");
    else if (a == "--chunk-size")
      chunk_size = parse_size(value("--chunk-size"), "--chunk-size");
    else if (a == "--reset-cbt")
      flags |= HSNAP_CREATE_RESET_CBT;
    else if (a == "--no-freeze")
      flags |= HSNAP_CREATE_NO_FREEZE;
    else if (!a.empty() && a[0] == '-')
      throw UsageError("create: unknown option " + a);
    else if (origin.empty())
      origin = a;
    else
      throw UsageError("create: unexpected argument " + a);
  }
  if (origin.empty()) throw UsageError("create: which ORIGIN device?");
  if (!store.empty() && !store_file.empty())
    throw UsageError("create: give --store or --store-file, not both");
  if (store_size && store_file.empty())
    throw UsageError("create: --store-size goes with --store-file");
  uint32_t chunk_shift = chunk_size ? chunk_shift_of(chunk_size) : 0;

  dev_t origin_dev = block_device_number(origin, "origin");
  SnapControl control;
  SnapStore cow;
  if (!store_file.empty()) {
    cow = attach_store_file(store_file, store_size, origin_dev);
  } else if (!store.empty()) {
    check_store_device(store, origin_dev);
    cow.device = store;
  }
  uint32_t id = 0;
  try {
    id = control.create(origin, cow.device, chunk_shift, flags);
  } catch (...) {
    cow.release_loop();
    throw;
  }
  cow.release_loop();
  json out = info_json(control.info(id));
  if (!cow.backing_file.empty()) out["store_file"] = cow.backing_file;
  print(out);
  return 0;
}

int run_destroy(std::vector<std::string> args) {
  std::string target;
  uint32_t flags = 0;
  for (const std::string& a : args) {
    if (a == "--keep-tracking")
      flags |= HSNAP_DESTROY_KEEP_TRACKING;
    else if (a == "--force")
      flags |= HSNAP_DESTROY_FORCE;
    else if (!a.empty() && a[0] == '-')
      throw UsageError("destroy: unknown option " + a);
    else if (target.empty())
      target = a;
    else
      throw UsageError("destroy: unexpected argument " + a);
  }
  if (target.empty()) throw UsageError("destroy: which ID or DEVICE?");
  SnapControl control;
  uint32_t id = resolve_id(control, target);
  control.destroy(id, flags);
  print(
      {{"id", id}, {"destroyed", (flags & HSNAP_DESTROY_KEEP_TRACKING) ? "snapshot" : "tracker"}});
  return 0;
}

int run_list(const std::vector<std::string>& args) {
  if (!args.empty()) throw UsageError("list takes no arguments");
  SnapControl control;
  json all = json::array();
  for (uint32_t id : control.list()) all.push_back(info_json(control.info(id)));
  print(all);
  return 0;
}

int run_cbt(std::vector<std::string> args) {
  std::string target;
  bool snapshot = false, reset = false;
  for (const std::string& a : args) {
    if (a == "--snapshot")
      snapshot = true;
    else if (a == "--reset")
      reset = true;
    else if (!a.empty() && a[0] == '-')
      throw UsageError("cbt: unknown option " + a);
    else if (target.empty())
      target = a;
    else
      throw UsageError("cbt: unexpected argument " + a);
  }
  if (target.empty()) throw UsageError("cbt: which ID or DEVICE?");
  if (snapshot && reset) throw UsageError("cbt: --reset applies to the live CBT only");
  SnapControl control;
  uint32_t id = resolve_id(control, target);
  hsnap_info info = control.info(id);
  uint64_t chunk = uint64_t{1} << info.chunk_shift;
  uint64_t generation = 0;
  std::vector<uint8_t> bits = control.cbt(id, snapshot ? HSNAP_CBT_SNAPSHOT : HSNAP_CBT_LIVE, 0,
                                          info.nr_chunks, &generation);
  if (reset) control.cbt_reset(id);

  json extents = json::array();
  uint64_t dirty = 0, size = info.origin_sectors * 512;
  for (uint64_t c = 0; c < info.nr_chunks;) {
    if (!(bits[c / 8] & (1u << (c % 8)))) {
      ++c;
      continue;
    }
    uint64_t first = c;
    while (c < info.nr_chunks && (bits[c / 8] & (1u << (c % 8)))) ++c;
    dirty += c - first;
    uint64_t offset = first * chunk;
    extents.push_back({offset, std::min(c * chunk, size) - offset});
  }
  print({{"id", id},
         {"source", snapshot ? "snapshot" : "live"},
         {"chunk_size", chunk},
         {"size", size},
         {"generation", generation},
         {"dirty_chunks", dirty},
         {"reset", reset},
         {"extents", extents}});
  return 0;
}

int run_snap(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  std::string sub = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  try {
    if (sub == "create") return run_create(args);
    if (sub == "destroy") return run_destroy(args);
    if (sub == "list") return run_list(args);
    if (sub == "cbt") return run_cbt(args);
    if (sub == "version") {
      if (!args.empty()) throw UsageError("version takes no arguments");
      SnapControl control;
      hsnap_version v = control.version();
      print({{"api_version", v.api_version},
             {"module_version", std::to_string(v.major) + "." + std::to_string(v.minor) + "." +
                                    std::to_string(v.patch)}});
      return 0;
    }
    throw UsageError("unknown subcommand '" + sub + "'");
  } catch (const UsageError& e) {
    std::fprintf(stderr, "hydrate snap: %s\n%s", e.what(), kUsage);
    return 2;
  } catch (const SnapError& e) {
    std::fprintf(stderr, "hydrate snap %s: %s\n", sub.c_str(), e.what());
    return 1;
  }
}

}  // namespace

HYDRATE_REGISTER_COMMAND(snap, Command{"snap",
                                       "in-place snapshots and changed-block tracking "
                                       "(hydrate-snap kernel module)",
                                       run_snap});

}  // namespace hydrate::cli
