#include "engine/sources/request_router.h"

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <cerrno>
#include <cstring>

#include "engine/export.h"
#include "engine/log.h"

namespace hydrate {
namespace {

// How late a retry or a deadline may be noticed while requests wait.
constexpr auto kSweepInterval = std::chrono::milliseconds(50);

// Errors worth asking again: the server may recover (nbdkit's error filter, a flaky disk
// behind it, a server restarting). EINVAL, EPERM, ENOSPC… would only repeat.
bool worth_retrying(int error) {
  return error == EIO || error == ENOMEM || error == ESHUTDOWN || error == EAGAIN;
}

// Requests per connection kept free of background work for clients' reads: a quarter of the
// depth (nbdkit serves 16 at a time per connection by default, so 4 stay free).
unsigned background_depth(unsigned depth) {
  depth = std::max(1u, depth);
  return std::max(1u, depth - std::max(1u, depth / 4));
}

std::string millis(std::chrono::milliseconds d) {
  return std::to_string(d.count()) + " ms";
}

}  // namespace

RequestRouter::RequestRouter(IoThreads& threads, NbdUri uri, SourceOptions options,
                             PrepareConnect prepare_connect)
    : threads_(threads),
      uri_(std::move(uri)),
      identity_(uri_.identity()),
      options_(std::move(options)),
      prepare_connect_(std::move(prepare_connect)),
      background_depth_(background_depth(options_.depth_per_connection)),
      home_(threads.next()) {}

RequestRouter::~RequestRouter() {
  // Normally close() did this; otherwise stop the connections' reconnect loops.
  for (Slot& slot : slots_) slot.connection->stop();
}

asio::awaitable<IoResult> RequestRouter::open() {
  std::shared_ptr<AsyncEvent> opened;
  std::shared_ptr<NbdConnection> first;
  {
    std::lock_guard lock(mutex_);
    if (closed_) co_return IoResult::failure(ESHUTDOWN, "source " + identity_ + " is closed");
    if (state_ != State::created)
      co_return IoResult::failure(EINVAL, "source " + identity_ + " was already opened");
    state_ = State::opening;
    opened_ = opened = std::make_shared<AsyncEvent>();
    first = add_connection_locked(Clock::now() + options_.connect_timeout);
  }
  first->start();
  co_await opened->async_wait(asio::use_awaitable);
  std::lock_guard lock(mutex_);
  co_return open_result_;
}

std::shared_ptr<NbdConnection> RequestRouter::add_connection_locked(
    std::optional<Clock::time_point> give_up_at) {
  NbdConnection::Settings settings;
  settings.uri = uri_.text;
  settings.index = static_cast<unsigned>(slots_.size());
  settings.name = identity_ + "#" + std::to_string(settings.index);
  settings.connect_timeout = options_.connect_timeout;
  settings.watchdog_interval = std::clamp<std::chrono::milliseconds>(
      options_.source_timeout / 8, std::chrono::milliseconds(10), std::chrono::seconds(1));
  settings.backoff = options_.backoff;
  settings.give_up_at = give_up_at;
  auto connection =
      std::make_shared<NbdConnection>(threads_.next(), std::move(settings), weak_from_this());
  slots_.push_back(Slot{connection});
  return connection;
}

asio::awaitable<void> RequestRouter::close() {
  std::vector<std::unique_ptr<SourceRequest>> waiting;
  std::vector<std::shared_ptr<NbdConnection>> connections;
  std::shared_ptr<AsyncEvent> opened;
  {
    std::lock_guard lock(mutex_);
    if (closed_) co_return;
    closed_ = true;
    waiting.swap(waiting_);
    for (Slot& slot : slots_) {
      connections.push_back(slot.connection);
      slot.ready = false;
    }
    if (state_ == State::opening) {
      state_ = State::failed;
      open_result_ = IoResult::failure(ESHUTDOWN, "source " + identity_ + " closed while opening");
      opened = opened_;
    }
  }
  if (opened) opened->set();
  for (auto& request : waiting)
    request->group->finish(failure(ESHUTDOWN, *request, "the source was closed"));
  // Each hands back what it had in flight; submit() then fails it with ESHUTDOWN.
  for (auto& connection : connections) co_await connection->shutdown();
  log::info("source.closed", {{"source", identity_}});
}

void RequestRouter::close_detached() {
  asio::co_spawn(
      home_, [self = shared_from_this()]() -> asio::awaitable<void> { co_await self->close(); },
      asio::detached);
}

void RequestRouter::submit(std::unique_ptr<SourceRequest> request) {
  std::shared_ptr<NbdConnection> target;
  IoResult failed;
  {
    std::lock_guard lock(mutex_);
    const auto now = Clock::now();
    if (closed_) {
      failed = failure(ESHUTDOWN, *request, "the source was closed");
    } else if (!refusal_.empty()) {
      failed = IoResult::failure(EIO, refusal_);
    } else if (now >= request->deadline) {
      failed = deadline_failure(*request);
    } else if (Slot* slot = request->not_before <= now ? slot_for_locked(*request) : nullptr) {
      assign(*slot, *request);
      target = slot->connection;
    } else {
      wait_locked(std::move(request));
      return;
    }
  }
  if (target) {
    target->issue(std::move(request));
  } else {
    request->group->finish(std::move(failed));
  }
}

RequestRouter::Slot* RequestRouter::slot_for_locked(const SourceRequest& request) {
  Slot* best = nullptr;
  for (Slot& slot : slots_) {
    if (!slot.ready) continue;
    if (request.background && slot.background >= background_depth_) continue;
    // Bytes, not requests: a client's read should not land behind a connection's big replies.
    if (!best || slot.bytes < best->bytes ||
        (slot.bytes == best->bytes && slot.assigned < best->assigned))
      best = &slot;
  }
  return best;
}

void RequestRouter::assign(Slot& slot, const SourceRequest& request) {
  ++slot.assigned;
  slot.bytes += request.length;
  if (request.background) ++slot.background;
}

void RequestRouter::wait_locked(std::unique_ptr<SourceRequest> request) {
  waiting_.push_back(std::move(request));
  if (sweeping_) return;
  sweeping_ = true;
  // Posted, not spawned here: co_spawn runs the coroutine inline when called on home_'s own
  // thread, and the sweeper's first act is to take the lock this caller holds.
  asio::post(home_, [self = shared_from_this()] {
    asio::co_spawn(self->home_, self->sweep(self), asio::detached);
  });
}

// On-demand requests first, then background ones, each in the order they came.
void RequestRouter::dispatch_pending_locked(Clock::time_point now, std::vector<Assignment>& out) {
  std::stable_partition(waiting_.begin(), waiting_.end(),
                        [](const auto& request) { return !request->background; });
  std::vector<std::unique_ptr<SourceRequest>> still_waiting;
  for (auto& request : waiting_) {
    Slot* slot =
        request->not_before <= now && request->deadline > now ? slot_for_locked(*request) : nullptr;
    if (slot) {
      assign(*slot, *request);
      out.emplace_back(slot->connection, std::move(request));
    } else {
      still_waiting.push_back(std::move(request));
    }
  }
  waiting_.swap(still_waiting);
}

void RequestRouter::issue_all(std::vector<Assignment>& assignments) {
  for (auto& [connection, request] : assignments) connection->issue(std::move(request));
}

// Runs while requests wait: fails the ones past their deadline and issues the ones whose
// retry time came. (A connection becoming ready issues waiting requests at once, in ready().)
asio::awaitable<void> RequestRouter::sweep(
    [[maybe_unused]] std::shared_ptr<RequestRouter> keep_alive) {
  asio::steady_timer timer(home_);
  for (;;) {
    std::vector<std::unique_ptr<SourceRequest>> expired;
    std::vector<Assignment> due;
    auto wake = Clock::now() + kSweepInterval;
    {
      std::lock_guard lock(mutex_);
      if (closed_ || waiting_.empty()) {
        sweeping_ = false;
        co_return;
      }
      const auto now = Clock::now();
      std::vector<std::unique_ptr<SourceRequest>> still_waiting;
      for (auto& request : waiting_) {
        if (request->deadline <= now) {
          expired.push_back(std::move(request));
        } else {
          still_waiting.push_back(std::move(request));
        }
      }
      waiting_.swap(still_waiting);
      dispatch_pending_locked(now, due);
      for (const auto& request : waiting_) {
        wake = std::min(wake, request->not_before > now
                                  ? std::min(request->not_before, request->deadline)
                                  : request->deadline);
      }
    }
    for (auto& request : expired) request->group->finish(deadline_failure(*request));
    issue_all(due);
    std::error_code ec;
    timer.expires_at(wake);
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

IoResult RequestRouter::prepare_connect(NbdConnection&) {
  return prepare_connect_ ? prepare_connect_() : IoResult::success();
}

IoResult RequestRouter::accept(NbdConnection& connection, const NbdServerInfo& info) {
  std::vector<std::shared_ptr<NbdConnection>> more;
  std::vector<std::unique_ptr<SourceRequest>> refused;
  IoResult verdict;
  {
    std::lock_guard lock(mutex_);
    if (closed_) return IoResult::failure(ESHUTDOWN, "source " + identity_ + " is closed");
    if (!server_known_) {
      server_known_ = true;
      server_ = info;
      uint64_t limit = kMaxPayload;
      if (info.max_block > 0) limit = std::min(limit, info.max_block);
      if (info.min_block > 1)
        limit = std::max(info.min_block, limit / info.min_block * info.min_block);
      max_request_ = limit;
      planned_connections_ = info.multi_conn ? std::max(1u, options_.connections) : 1;
      for (unsigned i = 1; i < planned_connections_; ++i)
        more.push_back(add_connection_locked(std::nullopt));
      log::info("source.connected", {{"source", identity_},
                                     {"size", info.size},
                                     {"multi_conn", info.multi_conn},
                                     {"connections", planned_connections_},
                                     {"max_request", max_request_},
                                     {"base_allocation", info.base_allocation},
                                     {"read_only", info.read_only}});
    } else if (info.size != server_.size) {
      refusal_ = "source " + identity_ + " changed size from " + std::to_string(server_.size) +
                 " to " + std::to_string(info.size) +
                 " bytes after reconnecting: refusing it, this is not the same source";
      refused.swap(waiting_);
      last_error_ = refusal_;
      verdict = IoResult::failure(EIO, refusal_);
      log::error("source.refused", {{"source", identity_},
                                    {"connection", connection.name()},
                                    {"old_size", server_.size},
                                    {"new_size", info.size}});
    }
  }
  for (auto& c : more) c->start();
  for (auto& request : refused) request->group->finish(IoResult::failure(EIO, verdict.message));
  return verdict;
}

void RequestRouter::ready(NbdConnection& connection, bool reconnected) {
  std::shared_ptr<AsyncEvent> opened;
  std::vector<Assignment> assignments;
  {
    std::lock_guard lock(mutex_);
    slots_[connection.index()].ready = true;
    if (reconnected) ++reconnects_;
    if (state_ == State::opening) {
      state_ = State::open;
      open_result_ = IoResult::success();
      opened = opened_;
    }
    dispatch_pending_locked(Clock::now(), assignments);
  }
  if (reconnected) log::info("source.reconnected", {{"connection", connection.name()}});
  if (opened) opened->set();
  issue_all(assignments);
}

void RequestRouter::down(NbdConnection& connection, const std::string& error, bool gave_up) {
  std::shared_ptr<AsyncEvent> opened;
  {
    std::lock_guard lock(mutex_);
    slots_[connection.index()].ready = false;
    last_error_ = error;
    if (gave_up && state_ == State::opening) {
      state_ = State::failed;
      open_result_ =
          IoResult::failure(ETIMEDOUT, "cannot connect to source " + identity_ + " within " +
                                           millis(options_.connect_timeout) + ": " + error);
      opened = opened_;
    }
  }
  log::warn("source.connection_down",
            {{"connection", connection.name()}, {"error", error}, {"gave_up", gave_up}});
  if (opened) opened->set();
}

void RequestRouter::finished(NbdConnection& connection, std::unique_ptr<SourceRequest> request,
                             CommandOutcome outcome) {
  IoResult result;
  std::vector<Assignment> next;  // what this request's place lets go out
  {
    std::lock_guard lock(mutex_);
    Slot& slot = slots_[connection.index()];
    --slot.assigned;
    slot.bytes -= request->length;
    if (request->background) --slot.background;
    if (!waiting_.empty() && !closed_) dispatch_pending_locked(Clock::now(), next);
    switch (outcome.kind) {
      case CommandOutcome::Kind::done:
        if (request->kind == SourceRequest::Kind::read) {
          ++reads_;
          bytes_read_ += request->length;
        } else if (request->kind == SourceRequest::Kind::block_status) {
          ++block_status_calls_;
        }
        break;
      case CommandOutcome::Kind::connection_lost:
        break;
      case CommandOutcome::Kind::server_error: {
        ++read_errors_;
        ++request->server_errors;
        request->last_error = outcome.message;
        last_error_ = identity_ + ": " + request->describe() + ": " + outcome.message;
        if (!worth_retrying(outcome.error)) {
          result = failure(outcome.error, *request, outcome.message);
          break;
        }
        const auto now = Clock::now();
        request->not_before = now + options_.backoff.delay(request->server_errors - 1);
        if (request->not_before >= request->deadline) {
          result = deadline_failure(*request);
          break;
        }
        if (!closed_) {
          wait_locked(std::move(request));
          break;
        }
        result = failure(ESHUTDOWN, *request, "the source was closed");
        break;
      }
      case CommandOutcome::Kind::refused:
        result = failure(outcome.error, *request, outcome.message);
        break;
    }
  }
  issue_all(next);
  if (!request) return;  // waiting for its retry
  if (outcome.kind == CommandOutcome::Kind::connection_lost) {
    submit(std::move(request));
    return;
  }
  if (result.ok() && request->kind == SourceRequest::Kind::block_status) {
    if (request->received.empty()) {
      result = failure(EIO, *request, "the server sent no base:allocation extents");
    } else {
      request->extents->insert(request->extents->end(), request->received.begin(),
                               request->received.end());
    }
  }
  request->group->finish(std::move(result));
}

IoResult RequestRouter::failure(int error, const SourceRequest& request,
                                const std::string& why) const {
  return IoResult::failure(error,
                           "source " + identity_ + ": " + request.describe() + " failed: " + why);
}

IoResult RequestRouter::deadline_failure(const SourceRequest& request) const {
  std::string why = "no success within the source timeout of " + millis(options_.source_timeout);
  if (request.server_errors > 0) {
    why += " (" + std::to_string(request.server_errors) +
           " server errors; last: " + request.last_error + ")";
  } else if (!request.last_error.empty()) {
    why += " (last error: " + request.last_error + ")";
  } else if (!last_error_.empty()) {
    why += " (last error: " + last_error_ + ")";
  }
  return failure(EIO, request, why);
}

bool RequestRouter::is_open() const {
  std::lock_guard lock(mutex_);
  return state_ == State::open && !closed_;
}

bool RequestRouter::is_closed() const {
  std::lock_guard lock(mutex_);
  return closed_;
}

NbdServerInfo RequestRouter::server() const {
  std::lock_guard lock(mutex_);
  return server_;
}

uint64_t RequestRouter::max_request() const {
  std::lock_guard lock(mutex_);
  return max_request_;
}

unsigned RequestRouter::planned_connections() const {
  std::lock_guard lock(mutex_);
  return planned_connections_;
}

SourceStats RequestRouter::stats() const {
  std::lock_guard lock(mutex_);
  SourceStats s;
  s.bytes_read = bytes_read_;
  s.reads = reads_;
  s.read_errors = read_errors_;
  s.block_status_calls = block_status_calls_;
  s.reconnects = reconnects_;
  for (const Slot& slot : slots_) s.connections += slot.ready ? 1 : 0;
  s.connected = s.connections > 0;
  s.last_error = last_error_;
  return s;
}

}  // namespace hydrate
