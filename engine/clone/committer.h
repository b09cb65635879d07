#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "engine/async_event.h"
#include "engine/block_device.h"
#include "engine/io_result.h"
#include "engine/metadata_store.h"
#include "engine/region_map.h"

namespace hydrate {

// Makes the region map durable in the only safe order (I2):
//   swap the dirty set -> flush the destination -> write map blocks -> flush metadata ->
//   write the superblock -> flush metadata.
// Runs every commit interval when bits changed, and whenever someone (a client FLUSH or FUA
// write, I4) asks. Requests arriving while a commit runs are folded into the next one, which
// starts after it: a commit only covers writes that completed before its swap.
class Committer {
 public:
  // Receives the regions of each transaction right after it became durable (I6 hooks run
  // here, never earlier).
  using PostCommitHook = std::function<asio::awaitable<void>(const RegionMap::Transaction&)>;
  // Called once when a commit step fails; the clone then stops accepting writes.
  using FailureHandler = std::function<void(const IoResult&)>;

  Committer(asio::any_io_executor executor, RegionMap& map, BlockDevice& destination,
            MetadataStore& store, std::string export_name);
  ~Committer();

  void add_hook(PostCommitHook hook);
  void on_failure(FailureHandler handler);
  // Test-only: skip the destination flush (breaks I2; the crash campaign must catch it).
  void set_skip_destination_flush(bool skip) { skip_destination_flush_ = skip; }
  // Superblock flags written with the next commit (e.g. kMetaFlagComplete).
  void set_flags(uint32_t flags);
  uint32_t flags() const;

  // Starts the periodic commit loop.
  void start(std::chrono::milliseconds interval);
  // Stops the periodic loop and waits until it has exited, so the Committer may be destroyed
  // afterwards; commits already requested still run.
  asio::awaitable<void> stop();

  // Returns once every write completed before this call is durable and its bits committed.
  asio::awaitable<IoResult> commit();

  // Bits were set since the last commit began (cheap; for the periodic loop and status).
  void note_dirty() { dirty_.store(true, std::memory_order_release); }
  bool dirty() const { return dirty_.load(std::memory_order_acquire); }

  uint64_t commits() const { return commits_.load(); }
  int64_t last_commit_unix_ms() const { return last_commit_unix_ms_.load(); }
  bool failed() const { return failed_.load(); }

 private:
  struct Batch {
    AsyncEvent done;
    IoResult result;
    unsigned members = 0;  // requests waiting on this batch (guarded by mutex_)
  };

  asio::awaitable<void> run_batches();
  asio::awaitable<IoResult> commit_once();
  asio::awaitable<void> periodic(std::chrono::milliseconds interval);

  asio::any_io_executor executor_;
  RegionMap& map_;
  BlockDevice& destination_;
  MetadataStore& store_;
  std::string export_name_;
  std::vector<PostCommitHook> hooks_;
  FailureHandler failure_handler_;
  bool skip_destination_flush_ = false;

  mutable std::mutex mutex_;
  bool running_ = false;
  std::shared_ptr<Batch> next_;  // the batch new requests join
  uint32_t flags_ = 0;
  uint32_t written_flags_ = 0;

  std::atomic<bool> dirty_{false};
  std::atomic<bool> failed_{false};
  std::atomic<uint64_t> commits_{0};
  std::atomic<int64_t> last_commit_unix_ms_{0};
  std::shared_ptr<asio::steady_timer> timer_;
  std::atomic<bool> stopped_{false};
  std::shared_ptr<AsyncEvent> loop_idle_;
};

}  // namespace hydrate
