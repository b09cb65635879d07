// `hydrate meta`: create, check and dump a clone's metadata file without a server. It goes
// through the engine's own MetadataStore, so `check` refuses exactly what `serve` would.
#include <algorithm>
#include <array>
#include <cstdio>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "cli/command.h"
#include "cli/meta_report.h"
#include "cli/meta_size.h"
#include "engine/file_block_device.h"
#include "engine/metadata_store.h"
#include "engine/run_to_completion.h"

namespace hydrate::cli {

namespace {

namespace fmt = metadata_format;

constexpr const char* kUsage =
    "usage: hydrate meta <subcommand> PATH [options]\n"
    "\n"
    "  create PATH --source-size SIZE --region-size SIZE --source-identity ID\n"
    "         [--destination-size SIZE] [--force]\n"
    "      Format PATH (a file, created or extended as needed, or a block device) as the\n"
    "      metadata of a new clone with nothing hydrated. The destination size defaults to\n"
    "      the source size. Refuses to overwrite existing hydrate metadata without --force.\n"
    "  check PATH [--source-size SIZE] [--destination-size SIZE] [--region-size SIZE]\n"
    "        [--source-identity ID]\n"
    "      Exit 0 with a one-line summary if PATH holds loadable metadata (and it agrees with\n"
    "      the given values); otherwise exit 1 with the reason the server would give.\n"
    "  dump PATH [--json] [--regions]\n"
    "      Both superblock slots, which one is active, and how much is hydrated; --regions\n"
    "      adds the hydrated ranges. Exit 1 if the metadata would not load.\n"
    "\n"
    "SIZE is a byte count with an optional K, M, G, T or P suffix (powers of 1024).\n";

constexpr int kExitInvalid = 1;
constexpr int kExitUsage = 2;

struct Options {
  std::string path;
  std::optional<uint64_t> source_size;
  std::optional<uint64_t> destination_size;
  std::optional<uint64_t> region_size;
  std::optional<std::string> source_identity;
  bool json = false;
  bool regions = false;
  bool force = false;
};

int usage_error(std::string_view subcommand, const std::string& message) {
  std::fprintf(stderr, "hydrate meta %.*s: %s\n(see 'hydrate meta --help')\n",
               static_cast<int>(subcommand.size()), subcommand.data(), message.c_str());
  return kExitUsage;
}

int failure(std::string_view subcommand, const std::string& message) {
  std::fprintf(stderr, "hydrate meta %.*s: %s\n", static_cast<int>(subcommand.size()),
               subcommand.data(), message.c_str());
  return kExitInvalid;
}

// Parses argv[2..] for `subcommand`; `allowed` lists the options it takes. Returns the usage
// error message, empty on success.
std::string parse(int argc, char** argv, std::string_view subcommand,
                  std::initializer_list<std::string_view> allowed, Options& options) {
  for (int i = 2; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string_view name = arg;
    std::optional<std::string_view> inline_value;
    if (auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      inline_value = arg.substr(eq + 1);
    }
    if (!name.starts_with("-")) {
      if (!options.path.empty()) return "unexpected argument '" + std::string(arg) + "'";
      options.path = arg;
      continue;
    }
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end())
      return "unknown option '" + std::string(name) + "' for " + std::string(subcommand);
    auto value = [&]() -> std::optional<std::string_view> {
      if (inline_value) return inline_value;
      if (i + 1 < argc) return std::string_view(argv[++i]);
      return std::nullopt;
    };
    auto size_option = [&](std::optional<uint64_t>& into) -> std::string {
      std::optional<std::string_view> text = value();
      if (!text) return std::string(name) + " needs a SIZE";
      std::string error;
      into = parse_meta_size(*text, name, error);
      return into ? std::string() : error;
    };
    std::string error;
    if (name == "--source-size")
      error = size_option(options.source_size);
    else if (name == "--destination-size")
      error = size_option(options.destination_size);
    else if (name == "--region-size")
      error = size_option(options.region_size);
    else if (name == "--source-identity") {
      std::optional<std::string_view> text = value();
      if (!text) return "--source-identity needs a value";
      options.source_identity = std::string(*text);
    } else if (name == "--json")
      options.json = true;
    else if (name == "--regions")
      options.regions = true;
    else if (name == "--force")
      options.force = true;
    if (!error.empty()) return error;
  }
  if (options.path.empty()) return "which metadata PATH?";
  return {};
}

// Region sizes are 32-bit on disk; anything larger is refused with the engine's wording.
uint32_t region_size_field(uint64_t value) {
  return value > UINT32_MAX ? 0 : static_cast<uint32_t>(value);
}

// Reads everything `check` and `dump` show. `device` stays open for further checks.
MetadataReport gather(const std::string& path, std::unique_ptr<FileBlockDevice>& device) {
  MetadataReport report;
  report.path = path;
  FileOpenOptions open_options;
  open_options.read_only = true;
  report.load = FileBlockDevice::open(path, open_options, device);
  if (!report.load) return report;
  report.device_size = device->size();
  IoResult slots = run_to_completion(MetadataStore::read_superblocks(*device, report.slots));
  report.slots_read = slots.ok();
  report.load = run_to_completion(
      MetadataStore::inspect(*device, report.geometry, report.summary, report.map));
  return report;
}

// Why `path` must not be formatted without --force; empty when it does not exist or its first
// 8 KiB are zero.
std::string existing_contents_refusal(const std::string& path) {
  std::unique_ptr<FileBlockDevice> existing;
  FileOpenOptions read_only;
  read_only.read_only = true;
  if (!FileBlockDevice::open(path, read_only, existing)) return {};
  std::array<fmt::DecodedSlot, 2> slots;
  if (run_to_completion(MetadataStore::read_superblocks(*existing, slots))) {
    for (const fmt::DecodedSlot& slot : slots)
      if (slot.status != fmt::SlotStatus::bad_magic)
        return path + " already holds hydrate metadata (clone " +
               fmt::format_uuid(slot.superblock.clone_uuid) + "); use --force to overwrite it";
  }
  std::vector<std::byte> head(std::min<uint64_t>(existing->size(), fmt::kBitmapOffset));
  IoResult read = run_to_completion(existing->read(0, head));
  if (!read) return read.message;
  if (std::any_of(head.begin(), head.end(), [](std::byte b) { return b != std::byte{0}; }))
    return path + " is not empty and holds no hydrate metadata; use --force to format it anyway";
  return {};
}

int run_create(int argc, char** argv) {
  Options options;
  std::string error = parse(
      argc, argv, "create",
      {"--source-size", "--destination-size", "--region-size", "--source-identity", "--force"},
      options);
  if (!error.empty()) return usage_error("create", error);
  if (!options.source_size) return usage_error("create", "--source-size is required");
  if (!options.region_size) return usage_error("create", "--region-size is required");
  if (!options.source_identity) return usage_error("create", "--source-identity is required");

  CloneGeometry geometry{*options.source_size,
                         options.destination_size.value_or(*options.source_size),
                         region_size_field(*options.region_size), *options.source_identity};
  if (*options.region_size > UINT32_MAX)
    return failure("create", "region size " + std::to_string(*options.region_size) +
                                 " is not a power of two between 4096 and 1073741824");
  if (std::string problem = MetadataStore::geometry_problem(geometry); !problem.empty())
    return failure("create", options.path + ": " + problem);

  // Never format over a clone by accident (its bitmap is all that says which destination
  // regions are valid), nor over data that is not metadata at all (a mistyped disk path).
  if (!options.force) {
    if (std::string refusal = existing_contents_refusal(options.path); !refusal.empty())
      return failure("create", refusal);
  }

  const uint64_t required = MetadataStore::required_size(geometry);
  FileOpenOptions open_options;
  open_options.ensure_size = required;
  std::unique_ptr<FileBlockDevice> device;
  IoResult opened = FileBlockDevice::open(options.path, open_options, device);
  if (!opened) return failure("create", opened.message);
  std::unique_ptr<MetadataStore> store;
  IoResult created = run_to_completion(MetadataStore::create(*device, geometry, store));
  if (!created) return failure("create", created.message);
  std::printf(
      "%s: created clone %s: source \"%s\" of %llu bytes, destination %llu bytes, "
      "%llu regions of %u bytes, %llu bytes of metadata\n",
      options.path.c_str(), fmt::format_uuid(store->superblock().clone_uuid).c_str(),
      geometry.source_identity.c_str(), static_cast<unsigned long long>(geometry.source_size),
      static_cast<unsigned long long>(geometry.destination_size),
      static_cast<unsigned long long>(store->superblock().region_count), geometry.region_size,
      static_cast<unsigned long long>(required));
  return 0;
}

int run_check(int argc, char** argv) {
  Options options;
  std::string error =
      parse(argc, argv, "check",
            {"--source-size", "--destination-size", "--region-size", "--source-identity"}, options);
  if (!error.empty()) return usage_error("check", error);
  std::unique_ptr<FileBlockDevice> device;
  MetadataReport report = gather(options.path, device);
  if (!report.load) return failure("check", report.load.message);

  // Expectations given: let the engine's open() compare them (I7), so the refusal is the one
  // `hydrate serve` would print.
  if (options.source_size || options.destination_size || options.region_size ||
      options.source_identity) {
    CloneGeometry expected = report.geometry;
    if (options.source_size) expected.source_size = *options.source_size;
    if (options.destination_size) expected.destination_size = *options.destination_size;
    if (options.region_size) expected.region_size = region_size_field(*options.region_size);
    if (options.source_identity) expected.source_identity = *options.source_identity;
    // Only what the region map itself cannot be built for is a usage error; every other
    // difference is for open() to name.
    try {
      RegionMap{expected.source_size, expected.region_size};
    } catch (const std::invalid_argument& e) {
      return usage_error("check", e.what());
    }
    std::unique_ptr<RegionMap> map;
    std::unique_ptr<MetadataStore> store;
    IoResult opened = run_to_completion(
        MetadataStore::open(*device, MetadataExpectations::exactly(expected), map, store));
    if (!opened) return failure("check", opened.message);
  }
  std::printf("%s\n", check_line(report).c_str());
  return 0;
}

int run_dump(int argc, char** argv) {
  Options options;
  std::string error = parse(argc, argv, "dump", {"--json", "--regions"}, options);
  if (!error.empty()) return usage_error("dump", error);
  std::unique_ptr<FileBlockDevice> device;
  MetadataReport report = gather(options.path, device);
  if (!device) return failure("dump", report.load.message);
  if (options.json)
    std::printf("%s\n", dump_json(report, options.regions).dump(2).c_str());
  else
    std::fputs(dump_text(report, options.regions).c_str(), stdout);
  return report.load ? 0 : kExitInvalid;
}

int run_meta(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return kExitUsage;
  }
  std::string_view subcommand = argv[1];
  if (subcommand == "-h" || subcommand == "--help" || subcommand == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  for (int i = 2; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--help" || std::string_view(argv[i]) == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
  }
  if (subcommand == "create") return run_create(argc, argv);
  if (subcommand == "check") return run_check(argc, argv);
  if (subcommand == "dump") return run_dump(argc, argv);
  std::fprintf(stderr, "hydrate meta: unknown subcommand '%s'\n%s", argv[1], kUsage);
  return kExitUsage;
}

}  // namespace

HYDRATE_REGISTER_COMMAND(meta, Command{"meta", "create, check or dump clone metadata", run_meta});

}  // namespace hydrate::cli
