// nbdkit-hydrate-plugin.so: hydrate's clone engine behind nbdkit's plugin API (version 2), so a
// clone (or a plain file) can be served by nbdkit and stacked under its filters:
//
//   nbdkit hydrate config=/etc/hydrate/vm1.yaml export=vm1
//   nbdkit hydrate source=nbd://backup/vm1 destination=/var/lib/vm1.img metadata=/var/lib/vm1.meta
//
// Life cycle: keys are checked in .config/.config_complete; files are checked (and a plain
// export opened) in .get_ready, while errors still reach the terminal; engine threads start in
// .after_fork, after nbdkit has daemonized; .cleanup commits the clone and stops them.
#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include <algorithm>
#include <memory>
#include <optional>

#include "engine/log.h"
#include "plugins/nbdkit/nbdkit_errors.h"
#include "plugins/nbdkit/nbdkit_log_sink.h"
#include "plugins/nbdkit/plugin_keys.h"
#include "plugins/nbdkit/plugin_runtime.h"

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

namespace {

using hydrate::ExportInfo;
using hydrate::ExtentList;
using hydrate::IoResult;
using hydrate::WriteFlags;
using hydrate::ZeroFlags;
using hydrate::nbdkit_plugin::PluginKeys;
using hydrate::nbdkit_plugin::PluginRuntime;
using hydrate::nbdkit_plugin::report_failure;

// One plugin per process: nbdkit loads it once and serves one export.
PluginKeys g_keys;
std::unique_ptr<PluginRuntime> g_runtime;

// Extents asked of the engine per .extents call; nbdkit merges and trims them for the client.
constexpr size_t kMaxExtentsPerCall = 16384;

PluginRuntime& runtime(void* handle) {
  return *static_cast<PluginRuntime*>(handle);
}
const ExportInfo& info(void* handle) {
  return runtime(handle).info();
}

void hydrate_load() {
  hydrate::nbdkit_plugin::route_engine_logs_to_nbdkit();
}

void hydrate_unload() {
  g_runtime.reset();
}

int hydrate_config(const char* key, const char* value) {
  try {
    g_keys.set(key, value);
    return 0;
  } catch (const std::exception& e) {
    nbdkit_error("%s", e.what());
    return -1;
  }
}

int hydrate_config_complete() {
  try {
    hydrate::nbdkit_plugin::PluginSettings settings = g_keys.complete();
    hydrate::log::set_level(settings.log_level);
    g_runtime = std::make_unique<PluginRuntime>(std::move(settings));
    return 0;
  } catch (const std::exception& e) {
    nbdkit_error("%s", e.what());
    return -1;
  }
}

int hydrate_get_ready() {
  try {
    g_runtime->prepare();
    return 0;
  } catch (const std::exception& e) {
    nbdkit_error("%s", e.what());
    return -1;
  }
}

int hydrate_after_fork() {
  try {
    g_runtime->start();
    return 0;
  } catch (const std::exception& e) {
    nbdkit_error("%s", e.what());
    return -1;
  }
}

void hydrate_cleanup() {
  if (g_runtime) g_runtime->stop();
}

// The one export is shared by every connection; its state is export-wide (multi-conn safe).
void* hydrate_open(int /*readonly*/) {
  return g_runtime.get();
}

void hydrate_close(void* /*handle*/) {}

const char* hydrate_default_export(int /*readonly*/, int /*is_tls*/) {
  return nbdkit_strdup_intern(g_runtime->settings().export_config.name.c_str());
}

int hydrate_list_exports(int /*readonly*/, int /*is_tls*/, struct nbdkit_exports* exports) {
  const auto& e = g_runtime->settings().export_config;
  return nbdkit_add_export(exports, e.name.c_str(),
                           e.description.empty() ? nullptr : e.description.c_str());
}

const char* hydrate_export_description(void* handle) {
  const std::string& description = info(handle).description;
  return description.empty() ? nullptr : nbdkit_strdup_intern(description.c_str());
}

int64_t hydrate_get_size(void* handle) {
  return static_cast<int64_t>(info(handle).size);
}

int hydrate_block_size(void* handle, uint32_t* minimum, uint32_t* preferred, uint32_t* maximum) {
  const ExportInfo& i = info(handle);
  *minimum = i.min_block;
  *preferred = std::max(i.preferred_block, i.min_block);
  *maximum = std::max(i.max_block, *preferred);
  return 0;
}

int hydrate_can_write(void* handle) {
  return info(handle).read_only ? 0 : 1;
}
int hydrate_can_flush(void* handle) {
  return info(handle).can_flush ? 1 : 0;
}
int hydrate_is_rotational(void* handle) {
  return info(handle).rotational ? 1 : 0;
}
int hydrate_can_trim(void* handle) {
  return info(handle).can_trim ? 1 : 0;
}
int hydrate_can_zero(void* handle) {
  return info(handle).can_zero ? 1 : 0;
}
int hydrate_can_fast_zero(void* handle) {
  return info(handle).can_fast_zero ? 1 : 0;
}
int hydrate_can_multi_conn(void* handle) {
  return info(handle).can_multi_conn ? 1 : 0;
}
int hydrate_can_extents(void* handle) {
  return runtime(handle).has_allocation_context() ? 1 : 0;
}

int hydrate_can_fua(void* handle) {
  return info(handle).can_fua ? NBDKIT_FUA_NATIVE : NBDKIT_FUA_NONE;
}

int hydrate_can_cache(void* handle) {
  return info(handle).can_cache ? NBDKIT_CACHE_NATIVE : NBDKIT_CACHE_NONE;
}

// nbdkit accepts requests up to 64 MiB whatever block size was advertised; the engine takes at
// most max_block per call, so larger reads and writes are cut into pieces.
template <typename Buffer, typename Call>
int in_pieces(void* handle, Buffer* buf, uint32_t count, uint64_t offset, Call call) {
  const uint64_t piece = std::max<uint64_t>(info(handle).max_block, 4096);
  for (uint64_t done = 0; done < count;) {
    uint64_t length = std::min<uint64_t>(piece, count - done);
    IoResult r = call(offset + done, buf + done, length);
    if (!r) return report_failure(r);
    done += length;
  }
  return 0;
}

int hydrate_pread(void* handle, void* buf, uint32_t count, uint64_t offset, uint32_t /*flags*/) {
  return in_pieces(handle, static_cast<std::byte*>(buf), count, offset,
                   [&](uint64_t at, std::byte* data, uint64_t length) {
                     return runtime(handle).read(at, std::span(data, length));
                   });
}

int hydrate_pwrite(void* handle, const void* buf, uint32_t count, uint64_t offset, uint32_t flags) {
  WriteFlags write_flags{(flags & NBDKIT_FLAG_FUA) != 0};
  return in_pieces(handle, static_cast<const std::byte*>(buf), count, offset,
                   [&](uint64_t at, const std::byte* data, uint64_t length) {
                     return runtime(handle).write(at, std::span(data, length), write_flags);
                   });
}

int hydrate_flush(void* handle, uint32_t /*flags*/) {
  IoResult r = runtime(handle).flush();
  return r ? 0 : report_failure(r);
}

int hydrate_trim(void* handle, uint32_t count, uint64_t offset, uint32_t flags) {
  IoResult r = runtime(handle).trim(offset, count, WriteFlags{(flags & NBDKIT_FLAG_FUA) != 0});
  return r ? 0 : report_failure(r);
}

int hydrate_zero(void* handle, uint32_t count, uint64_t offset, uint32_t flags) {
  ZeroFlags zero_flags;
  zero_flags.fua = (flags & NBDKIT_FLAG_FUA) != 0;
  zero_flags.may_trim = (flags & NBDKIT_FLAG_MAY_TRIM) != 0;
  zero_flags.fast_only = (flags & NBDKIT_FLAG_FAST_ZERO) != 0;
  IoResult r = runtime(handle).zero(offset, count, zero_flags);
  if (r) return 0;
  if (r.error == ENOTSUP || r.error == EOPNOTSUPP) {
    // Not a failure: the client asked for a fast zero we cannot do (it falls back to writing),
    // or nbdkit falls back to .pwrite itself.
    nbdkit_debug("%s", r.message.c_str());
    nbdkit_set_error(ENOTSUP);
    return -1;
  }
  return report_failure(r);
}

int hydrate_extents(void* handle, uint32_t count, uint64_t offset, uint32_t flags,
                    struct nbdkit_extents* extents) {
  size_t max_extents = (flags & NBDKIT_FLAG_REQ_ONE) ? 1 : kMaxExtentsPerCall;
  ExtentList list;
  IoResult r = runtime(handle).allocation(offset, count, max_extents, list);
  if (!r) return report_failure(r);
  if (list.empty())
    return report_failure(IoResult::failure(
        EIO, "export '" + info(handle).name + "': no extent at offset " + std::to_string(offset)));
  uint64_t at = offset;
  for (const hydrate::Extent& e : list) {
    uint32_t type = e.flags & (NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO);
    if (nbdkit_add_extent(extents, at, e.length, type) == -1) return -1;
    at += e.length;
  }
  return 0;
}

int hydrate_cache(void* handle, uint32_t count, uint64_t offset, uint32_t flags) {
  if (flags != 0)
    return report_failure(IoResult::failure(
        EINVAL, "export '" + info(handle).name + "': cache with unknown flags " +
                    std::to_string(flags) + " at offset " + std::to_string(offset)));
  IoResult r = runtime(handle).cache(offset, count);
  return r ? 0 : report_failure(r);
}

nbdkit_plugin make_plugin() {
  nbdkit_plugin p = nbdkit_plugin();
  p.name = "hydrate";
  p.longname = "hydrate clone engine";
  p.version = HYDRATE_VERSION;
  p.description =
      "Serves an instant, crash-safe clone of a block device: reads come from the destination "
      "where hydrated and from the source elsewhere, while the rest is copied in the background "
      "(the same engine and YAML schema as `hydrate serve`). Also serves a plain file.";
  p.load = hydrate_load;
  p.unload = hydrate_unload;
  p.config = hydrate_config;
  p.config_complete = hydrate_config_complete;
  p.config_help = PluginKeys::help();
  p.magic_config_key = "config";
  p.get_ready = hydrate_get_ready;
  p.after_fork = hydrate_after_fork;
  p.cleanup = hydrate_cleanup;
  p.open = hydrate_open;
  p.close = hydrate_close;
  p.default_export = hydrate_default_export;
  p.list_exports = hydrate_list_exports;
  p.export_description = hydrate_export_description;
  p.get_size = hydrate_get_size;
  p.block_size = hydrate_block_size;
  p.can_write = hydrate_can_write;
  p.can_flush = hydrate_can_flush;
  p.is_rotational = hydrate_is_rotational;
  p.can_trim = hydrate_can_trim;
  p.can_zero = hydrate_can_zero;
  p.can_fast_zero = hydrate_can_fast_zero;
  p.can_fua = hydrate_can_fua;
  p.can_multi_conn = hydrate_can_multi_conn;
  p.can_extents = hydrate_can_extents;
  p.can_cache = hydrate_can_cache;
  p.pread = hydrate_pread;
  p.pwrite = hydrate_pwrite;
  p.flush = hydrate_flush;
  p.trim = hydrate_trim;
  p.zero = hydrate_zero;
  p.extents = hydrate_extents;
  p.cache = hydrate_cache;
  return p;
}

nbdkit_plugin g_plugin = make_plugin();

}  // namespace

NBDKIT_REGISTER_PLUGIN(g_plugin)
