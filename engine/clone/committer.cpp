#include "engine/clone/committer.h"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>

#include "engine/log.h"

namespace hydrate {

Committer::Committer(asio::any_io_executor executor, RegionMap& map, BlockDevice& destination,
                     MetadataStore& store, std::string export_name)
    : executor_(std::move(executor)),
      map_(map),
      destination_(destination),
      store_(store),
      export_name_(std::move(export_name)),
      next_(std::make_shared<Batch>()) {
  flags_ = written_flags_ = store_.summary().flags;
}

Committer::~Committer() = default;

void Committer::add_hook(PostCommitHook hook) { hooks_.push_back(std::move(hook)); }
void Committer::on_failure(FailureHandler handler) { failure_handler_ = std::move(handler); }

void Committer::set_flags(uint32_t flags) {
  std::lock_guard lock(mutex_);
  flags_ = flags;
}

uint32_t Committer::flags() const {
  std::lock_guard lock(mutex_);
  return flags_;
}

asio::awaitable<IoResult> Committer::commit() {
  std::shared_ptr<Batch> batch;
  bool start = false;
  {
    std::lock_guard lock(mutex_);
    batch = next_;
    ++batch->members;
    if (!running_) running_ = start = true;
  }
  if (start) asio::co_spawn(executor_, run_batches(), asio::detached);
  co_await batch->done.async_wait(asio::use_awaitable);
  co_return batch->result;
}

// One runner at a time drains the queue of batches; each batch is one commit that starts only
// after every request in it was registered.
asio::awaitable<void> Committer::run_batches() {
  for (;;) {
    std::shared_ptr<Batch> batch;
    {
      std::lock_guard lock(mutex_);
      batch = next_;
      next_ = std::make_shared<Batch>();
    }
    batch->result = co_await commit_once();
    bool more;
    {
      std::lock_guard lock(mutex_);
      // Someone joined the batch we just swapped in while we were committing.
      more = next_->members > 0;
      if (!more) running_ = false;
    }
    batch->done.set();
    if (!more) co_return;
  }
}

asio::awaitable<IoResult> Committer::commit_once() {
  if (failed_.load()) {
    co_return IoResult::failure(EIO, "export " + export_name_ +
                                         ": metadata is read-only after an earlier failure");
  }
  // Phase one: from here on, newly set bits belong to the next transaction.
  dirty_.store(false, std::memory_order_release);
  RegionMap::Transaction transaction = map_.begin_commit();
  uint32_t flags;
  uint32_t written_flags;
  {
    std::lock_guard lock(mutex_);
    flags = flags_;
    written_flags = written_flags_;
  }

  // I2: the data of every bit in `transaction` (and every completed client write) reaches
  // stable storage before any of those bits can.
  if (!skip_destination_flush_) {
    IoResult flushed = co_await destination_.flush();
    if (!flushed) {
      map_.finish_commit(std::move(transaction), false);
      failed_.store(true);
      IoResult failure = IoResult::failure(
          flushed.error, "export " + export_name_ + ": destination flush failed before commit: " +
                             flushed.message);
      if (failure_handler_) failure_handler_(failure);
      co_return failure;
    }
  }

  if (transaction.empty() && flags == written_flags) {
    map_.finish_commit(std::move(transaction), true);
    co_return IoResult::success();
  }

  IoResult written = co_await store_.commit(map_, transaction, flags);
  bool ok = written.ok();
  uint64_t regions = transaction.regions;
  if (ok) {
    {
      std::lock_guard lock(mutex_);
      written_flags_ = flags;
    }
    commits_.fetch_add(1);
    last_commit_unix_ms_.store(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
    log::debug("commit", {{"export", export_name_},
                          {"regions", regions},
                          {"generation", store_.summary().generation}});
    for (auto& hook : hooks_) co_await hook(transaction);
  }
  map_.finish_commit(std::move(transaction), ok);
  if (!ok) {
    failed_.store(true);
    IoResult failure = IoResult::failure(
        written.error, "export " + export_name_ + ": metadata commit failed: " + written.message);
    if (failure_handler_) failure_handler_(failure);
    co_return failure;
  }
  co_return IoResult::success();
}

void Committer::start(std::chrono::milliseconds interval) {
  timer_ = std::make_shared<asio::steady_timer>(executor_);
  loop_idle_ = std::make_shared<AsyncEvent>();
  asio::co_spawn(executor_, periodic(interval), asio::detached);
}

asio::awaitable<void> Committer::stop() {
  stopped_.store(true);
  if (!timer_) co_return;
  asio::post(executor_, [timer = timer_] { timer->cancel(); });
  // The loop touches this object when it wakes up: only return once it is gone.
  co_await loop_idle_->async_wait(asio::use_awaitable);
}

asio::awaitable<void> Committer::periodic(std::chrono::milliseconds interval) {
  auto timer = timer_;
  while (!stopped_.load()) {
    timer->expires_after(interval);
    std::error_code ec;
    co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (stopped_.load() || failed_.load()) break;
    bool flags_changed;
    {
      std::lock_guard lock(mutex_);
      flags_changed = flags_ != written_flags_;
    }
    if (dirty() || flags_changed) {
      IoResult r = co_await commit();
      if (!r) log::error("commit.failed", {{"export", export_name_}, {"error", r.message}});
    }
  }
  loop_idle_->set();
}

}  // namespace hydrate
