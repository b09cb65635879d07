#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "engine/blocking_pool.h"
#include "engine/clone/clone_volume.h"
#include "engine/control/control_server.h"
#include "engine/export.h"
#include "engine/io_threads.h"
#include "plugins/nbdkit/export_factory.h"
#include "plugins/nbdkit/plugin_keys.h"

namespace hydrate::nbdkit_plugin {

// Everything the plugin runs between nbdkit's .get_ready and .cleanup: the engine's event loops
// and blocking pool, the one export, and the control socket. The request methods are called
// from nbdkit's worker threads (PARALLEL thread model) and block until the engine is done.
class PluginRuntime {
 public:
  explicit PluginRuntime(PluginSettings settings);
  ~PluginRuntime();
  PluginRuntime(const PluginRuntime&) = delete;
  PluginRuntime& operator=(const PluginRuntime&) = delete;

  // .get_ready, before nbdkit forks: opens a plain export, or checks a clone's files. Nothing
  // here starts a thread. Throws std::runtime_error with a one-line message.
  void prepare();
  // .after_fork: starts the event loops, opens the clone (connecting to its source, loading its
  // map, starting hydration) and the control socket. On failure everything started is stopped
  // again before the exception leaves.
  void start();
  // .cleanup: stops the control socket, closes the clone (stops hydration, final commit),
  // stops the event loops. Failures are logged; calling it twice is harmless.
  void stop();

  const ExportInfo& info() const { return export_->info(); }
  const PluginSettings& settings() const { return settings_; }
  bool has_allocation_context() const { return allocation_context_.has_value(); }

  IoResult read(uint64_t offset, std::span<std::byte> out);
  IoResult write(uint64_t offset, std::span<const std::byte> data, WriteFlags flags);
  IoResult flush();
  IoResult trim(uint64_t offset, uint64_t length, WriteFlags flags);
  IoResult zero(uint64_t offset, uint64_t length, ZeroFlags flags);
  IoResult cache(uint64_t offset, uint64_t length);
  // base:allocation extents from `offset`, at most `max_extents` of them.
  IoResult allocation(uint64_t offset, uint64_t length, size_t max_extents, ExtentList& out);

 private:
  void start_threads();
  void stop_threads();

  PluginSettings settings_;
  std::unique_ptr<BlockingPool> pool_;
  std::unique_ptr<IoThreads> threads_;
  CloneFiles clone_files_;
  std::shared_ptr<Export> export_;
  std::shared_ptr<CloneVolume> clone_;
  std::unique_ptr<ControlServer> control_;
  std::optional<size_t> allocation_context_;
  bool running_ = false;
};

}  // namespace hydrate::nbdkit_plugin
