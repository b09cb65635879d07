#include "plugins/nbdkit/plugin_runtime.h"

#include <pthread.h>
#include <signal.h>

#include <stdexcept>

#include "engine/control/control_registry.h"
#include "engine/log.h"
#include "plugins/nbdkit/blocking_wait.h"

namespace hydrate::nbdkit_plugin {
namespace {

constexpr std::string_view kAllocationContext = "base:allocation";

// Blocks the signals nbdkit handles (shutdown, reload) for the lifetime of the object, so the
// engine threads created meanwhile inherit the mask and the signals keep going to nbdkit's own
// threads. Processes the engine spawns (an nbdkit source) reset their mask themselves.
class SignalsBlocked {
 public:
  SignalsBlocked() {
    sigset_t block;
    sigemptyset(&block);
    for (int s : {SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGPIPE})
      sigaddset(&block, s);
    pthread_sigmask(SIG_BLOCK, &block, &saved_);
  }
  ~SignalsBlocked() { pthread_sigmask(SIG_SETMASK, &saved_, nullptr); }
  SignalsBlocked(const SignalsBlocked&) = delete;
  SignalsBlocked& operator=(const SignalsBlocked&) = delete;

 private:
  sigset_t saved_;
};

IoResult thrown(const Export& e, const char* operation, uint64_t offset) {
  // The engine reports failures as values; an exception here is a bug, never client data.
  return IoResult::failure(EIO, "export '" + e.info().name + "': " + operation + " at offset " +
                                    std::to_string(offset) + " failed unexpectedly");
}

}  // namespace

PluginRuntime::PluginRuntime(PluginSettings settings) : settings_(std::move(settings)) {
  // Its threads start on first use, after the fork.
  pool_ = std::make_unique<BlockingPool>(settings_.blocking_threads);
}

PluginRuntime::~PluginRuntime() {
  stop();
}

void PluginRuntime::prepare() {
  const config::ExportConfig& e = settings_.export_config;
  if (e.clone) {
    clone_files_ = inspect_clone_files(e);
  } else {
    export_ = open_plain_export(e, *pool_);
  }
}

void PluginRuntime::start() {
  try {
    start_threads();
    const config::ExportConfig& e = settings_.export_config;
    if (e.clone) {
      clone_ = open_clone_export(e, clone_files_, *threads_, *pool_);
      export_ = clone_;
    }
    std::vector<std::string> contexts = export_->meta_contexts();
    for (size_t i = 0; i < contexts.size(); ++i)
      if (contexts[i] == kAllocationContext) allocation_context_ = i;

    if (!settings_.control.empty()) {
      auto registry = std::make_shared<ControlRegistry>();
      if (clone_)
        registry->add_clone(clone_);
      else
        registry->add_export(export_);
      control_ = std::make_unique<ControlServer>(threads_->next(), registry);
      control_->start(settings_.control);
    }
  } catch (...) {
    stop();
    throw;
  }
  log::info("plugin.ready", {{"export", export_->info().name},
                             {"kind", clone_ ? "clone" : "plain"},
                             {"size", export_->info().size},
                             {"control", settings_.control},
                             {"threads", threads_->size()}});
}

void PluginRuntime::start_threads() {
  threads_ = std::make_unique<IoThreads>(settings_.threads);
  SignalsBlocked blocked;
  threads_->start();
  running_ = true;
}

void PluginRuntime::stop() {
  if (control_) {
    control_->stop();
  }
  if (clone_ && running_) {
    IoResult r;
    try {
      r = wait_for(threads_->next(), clone_->close());
    } catch (const std::exception& ex) {
      r = IoResult::failure(EIO, ex.what());
    }
    if (!r)
      log::error("clone.close_failed", {{"export", clone_->info().name}, {"error", r.message}});
    else
      log::info("clone.closed", {{"export", clone_->info().name}});
  }
  stop_threads();
  control_.reset();
  clone_.reset();
  export_.reset();
}

void PluginRuntime::stop_threads() {
  if (!threads_) return;
  if (running_) {
    threads_->stop();
    threads_->join();
    running_ = false;
  }
}

IoResult PluginRuntime::read(uint64_t offset, std::span<std::byte> out) {
  try {
    return wait_for(threads_->next(), export_->read(offset, out, nullptr));
  } catch (const std::exception&) {
    return thrown(*export_, "read", offset);
  }
}

IoResult PluginRuntime::write(uint64_t offset, std::span<const std::byte> data, WriteFlags flags) {
  try {
    return wait_for(threads_->next(), export_->write(offset, data, flags));
  } catch (const std::exception&) {
    return thrown(*export_, "write", offset);
  }
}

IoResult PluginRuntime::flush() {
  try {
    return wait_for(threads_->next(), export_->flush());
  } catch (const std::exception&) {
    return thrown(*export_, "flush", 0);
  }
}

IoResult PluginRuntime::trim(uint64_t offset, uint64_t length, WriteFlags flags) {
  try {
    return wait_for(threads_->next(), export_->trim(offset, length, flags));
  } catch (const std::exception&) {
    return thrown(*export_, "trim", offset);
  }
}

IoResult PluginRuntime::zero(uint64_t offset, uint64_t length, ZeroFlags flags) {
  try {
    return wait_for(threads_->next(), export_->zero(offset, length, flags));
  } catch (const std::exception&) {
    return thrown(*export_, "write zeroes", offset);
  }
}

IoResult PluginRuntime::cache(uint64_t offset, uint64_t length) {
  try {
    return wait_for(threads_->next(), export_->cache(offset, length));
  } catch (const std::exception&) {
    return thrown(*export_, "cache", offset);
  }
}

IoResult PluginRuntime::allocation(uint64_t offset, uint64_t length, size_t max_extents,
                                   ExtentList& out) {
  if (!allocation_context_)
    return IoResult::failure(
        ENOTSUP, "export '" + export_->info().name + "' does not offer base:allocation");
  try {
    return wait_for(threads_->next(),
                    export_->block_status(*allocation_context_, offset, length, max_extents, out));
  } catch (const std::exception&) {
    return thrown(*export_, "block status", offset);
  }
}

}  // namespace hydrate::nbdkit_plugin
