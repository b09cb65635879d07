#include "engine/sources/nbd_connection.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <cerrno>
#include <cstring>

#include "engine/log.h"

namespace hydrate {

// libnbd hands our user_data back to its callbacks; this tells which command finished.
struct NbdConnection::CallbackToken {
  NbdConnection* connection;
  uint64_t id;
};

namespace {

using Clock = std::chrono::steady_clock;

// Rounds of notify calls per wake-up before yielding the thread to other work on it.
constexpr int kMaxRoundsPerWake = 64;

std::string libnbd_error() {
  const char* text = nbd_get_error();
  return text ? text : "unknown libnbd error";
}

bool same_socket(int a, int b) {
  struct stat sa {};
  struct stat sb {};
  if (::fstat(a, &sa) != 0 || ::fstat(b, &sb) != 0) return false;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

std::string milliseconds_text(std::chrono::milliseconds d) {
  return std::to_string(d.count()) + " ms";
}

}  // namespace

NbdConnection::NbdConnection(asio::io_context& context, Settings settings,
                             std::weak_ptr<Owner> owner)
    : context_(context), settings_(std::move(settings)), owner_(std::move(owner)), wake_(context) {}

NbdConnection::~NbdConnection() {
  unwatch_socket();
  if (handle_) nbd_close(handle_);
}

void NbdConnection::start() {
  // Posted first: co_spawn would run the coroutine inline when called on this connection's
  // thread, i.e. inside the caller (another connection's handshake callback).
  asio::post(context_, [self = shared_from_this()] {
    asio::co_spawn(
        self->context_, self->run(), [name = self->settings_.name](std::exception_ptr failure) {
          if (!failure) return;
          try {
            std::rethrow_exception(failure);
          } catch (const std::exception& e) {
            log::error("source.connection_crashed", {{"connection", name}, {"what", e.what()}});
          }
        });
  });
}

void NbdConnection::issue(std::unique_ptr<SourceRequest> request) {
  asio::post(context_, [self = shared_from_this(), request = std::move(request)]() mutable {
    self->start_command(std::move(request));
  });
}

asio::awaitable<void> NbdConnection::shutdown() {
  // A named variable, not a temporary inside the co_await expression: GCC 12 destroys such
  // temporaries twice (their captured shared_ptr then loses a reference it never had).
  auto on_own_thread = [self = shared_from_this()]() -> asio::awaitable<void> {
    self->close_now();
    co_return;
  };
  co_await asio::co_spawn(context_, std::move(on_own_thread), asio::use_awaitable);
}

void NbdConnection::stop() {
  asio::post(context_, [self = shared_from_this()] { self->close_now(); });
}

asio::awaitable<void> NbdConnection::run() {
  auto self = shared_from_this();
  unsigned failed_attempts = 0;
  bool connected_before = false;
  while (!closing_ && !owner_.expired()) {
    std::string error;
    if (co_await connect(error)) {
      {
        // Held only for these calls: a connection must not keep its owner alive.
        auto owner = owner_.lock();
        if (!owner || closing_) break;
        if (IoResult accepted = owner->accept(*this, info_); !accepted) {
          drop(accepted.message);
          owner->down(*this, accepted.message, /*gave_up=*/true);
          break;
        }
        settings_.give_up_at.reset();
        failed_attempts = 0;
        ready_ = true;
        owner->ready(*this, connected_before);
        connected_before = true;
      }
      co_await serve();
    } else {
      if (closing_) break;
      const bool give_up = settings_.give_up_at && Clock::now() >= *settings_.give_up_at;
      if (auto owner = owner_.lock()) owner->down(*this, error, give_up);
      if (give_up) break;
    }
    if (closing_) break;
    co_await sleep(settings_.backoff.delay(failed_attempts++));
  }
  if (handle_) drop("connection closed");
}

asio::awaitable<void> NbdConnection::sleep(Clock::duration delay) {
  const auto until = Clock::now() + delay;
  while (!closing_ && Clock::now() < until) {
    std::error_code ec;
    wake_.expires_at(until);
    co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

asio::awaitable<bool> NbdConnection::connect(std::string& error) {
  handle_ = nbd_create();
  if (!handle_) {
    error = "cannot create a libnbd handle: " + libnbd_error();
    co_return false;
  }
  nbd_set_handle_name(handle_, settings_.name.c_str());
  // Lets the URI name a TLS key file (tls-psk-file=…); the URI comes from the operator.
  nbd_set_uri_allow_local_file(handle_, true);
  if (nbd_add_meta_context(handle_, LIBNBD_CONTEXT_BASE_ALLOCATION) == -1) {
    error = libnbd_error();
    drop(error);
    co_return false;
  }
  if (auto owner = owner_.lock()) {
    if (IoResult prepared = owner->prepare_connect(*this); !prepared) {
      error = prepared.message;
      drop(error);
      co_return false;
    }
  }

  connecting_ = true;
  last_error_.clear();
  if (nbd_aio_connect_uri(handle_, settings_.uri.c_str()) == -1) {
    error = libnbd_error();
    connecting_ = false;
    drop(error);
    co_return false;
  }
  after_libnbd_call();
  pump();

  const auto deadline = Clock::now() + settings_.connect_timeout;
  while (handle_ && !closing_ && nbd_aio_is_ready(handle_) != 1) {
    if (Clock::now() >= deadline) {
      error = "no NBD handshake within " + milliseconds_text(settings_.connect_timeout);
      connecting_ = false;
      drop(error);
      co_return false;
    }
    std::error_code ec;
    wake_.expires_at(deadline);
    co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  connecting_ = false;
  if (!handle_ || closing_) {
    error = closing_ ? "connection closed" : last_error_;
    if (handle_) drop(error);
    co_return false;
  }
  info_ = learn_info();
  co_return true;
}

NbdServerInfo NbdConnection::learn_info() const {
  NbdServerInfo info;
  const int64_t size = nbd_get_size(handle_);
  info.size = size > 0 ? static_cast<uint64_t>(size) : 0;
  info.multi_conn = nbd_can_multi_conn(handle_) == 1;
  info.read_only = nbd_is_read_only(handle_) == 1;
  info.can_trim = nbd_can_trim(handle_) == 1;
  info.base_allocation = nbd_can_meta_context(handle_, LIBNBD_CONTEXT_BASE_ALLOCATION) == 1;
  const int64_t min_block = nbd_get_block_size(handle_, LIBNBD_SIZE_MINIMUM);
  const int64_t max_block = nbd_get_block_size(handle_, LIBNBD_SIZE_MAXIMUM);
  info.min_block = min_block > 0 ? static_cast<uint64_t>(min_block) : 0;
  info.max_block = max_block > 0 ? static_cast<uint64_t>(max_block) : 0;
  return info;
}

asio::awaitable<void> NbdConnection::serve() {
  while (handle_ && !closing_) {
    std::error_code ec;
    wake_.expires_after(settings_.watchdog_interval);
    co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (handle_ && !closing_) check_deadlines();
  }
}

void NbdConnection::check_deadlines() {
  const auto now = Clock::now();
  for (const auto& [id, request] : in_flight_) {
    if (request->deadline > now) continue;
    // libnbd cannot abandon one command; dropping the connection is the only way to stop it
    // from writing into the caller's buffer later.
    drop("no reply to " + request->describe() + " before its deadline; dropping the connection");
    return;
  }
}

void NbdConnection::start_command(std::unique_ptr<SourceRequest> request) {
  if (!handle_ || !ready_ || closing_) {
    std::string why = closing_ ? "connection closed" : "connection not ready";
    request->last_error = why;
    report(std::move(request), {CommandOutcome::Kind::connection_lost, ENOTCONN, why});
    return;
  }
  if (request->kind == SourceRequest::Kind::block_status && !info_.base_allocation) {
    // Without base:allocation the server cannot tell holes; "all data" is always correct.
    request->received = {Extent{request->length, 0}};
    report(std::move(request), {});
    return;
  }

  const uint64_t id = ++next_id_;
  SourceRequest& r = *(in_flight_[id] = std::move(request));
  auto* token = new CallbackToken{this, id};
  nbd_completion_callback completion{
      .callback = &NbdConnection::on_command_done, .user_data = token, .free = &free_token};
  int64_t cookie = -1;
  switch (r.kind) {
    case SourceRequest::Kind::read:
      cookie = nbd_aio_pread(handle_, r.data, r.length, r.offset, completion, 0);
      break;
    case SourceRequest::Kind::block_status: {
      r.received.clear();
      nbd_extent_callback extents{
          .callback = &NbdConnection::on_extents, .user_data = token, .free = nullptr};
      cookie = nbd_aio_block_status(handle_, r.length, r.offset, extents, completion, 0);
      break;
    }
    case SourceRequest::Kind::trim:
      cookie = nbd_aio_trim(handle_, r.length, r.offset, completion, 0);
      break;
  }
  if (cookie == -1) {
    const int error = nbd_get_errno();
    last_error_ = libnbd_error();
    auto it = in_flight_.find(id);
    auto failed = std::move(it->second);
    in_flight_.erase(it);
    if (nbd_aio_is_dead(handle_) == 1 || nbd_aio_is_closed(handle_) == 1) {
      failed->last_error = last_error_;
      report(std::move(failed), {CommandOutcome::Kind::connection_lost, ENOTCONN, last_error_});
      after_libnbd_call();
    } else {
      CommandOutcome refused{CommandOutcome::Kind::refused, error ? error : EINVAL,
                             "libnbd refused " + failed->describe() + ": " + last_error_};
      report(std::move(failed), std::move(refused));
    }
    return;
  }
  after_libnbd_call();
  pump();
}

int NbdConnection::on_command_done(void* user_data, int* error) {
  auto* token = static_cast<CallbackToken*>(user_data);
  token->connection->completed_.push_back({token->id, *error});
  return 1;  // retire the command: the outcome is handled after the libnbd call returns
}

int NbdConnection::on_extents(void* user_data, const char* context, uint64_t /*offset*/,
                              uint32_t* entries, size_t count, int* /*error*/) {
  if (std::strcmp(context, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0) return 0;
  auto* token = static_cast<CallbackToken*>(user_data);
  auto& in_flight = token->connection->in_flight_;
  auto it = in_flight.find(token->id);
  if (it == in_flight.end()) return 0;
  SourceRequest& r = *it->second;
  uint64_t covered = 0;
  for (const Extent& e : r.received) covered += e.length;
  // Pairs of (length, flags). The last extent may run past the request: clip it.
  for (size_t i = 0; i + 1 < count && covered < r.length; i += 2) {
    const uint64_t length = std::min<uint64_t>(entries[i], r.length - covered);
    if (length == 0) continue;
    r.received.push_back({length, entries[i + 1] & (kAllocationHole | kAllocationZero)});
    covered += length;
  }
  return 0;
}

void NbdConnection::free_token(void* user_data) {
  delete static_cast<CallbackToken*>(user_data);
}

void NbdConnection::pump() {
  for (int round = 0; handle_; ++round) {
    if (round == kMaxRoundsPerWake) {
      asio::post(context_, [self = shared_from_this()] { self->pump(); });
      return;
    }
    if (!watch_socket()) return;
    const unsigned direction = nbd_aio_get_direction(handle_);
    pollfd p{};
    p.fd = watched_->native_handle();
    if (direction & LIBNBD_AIO_DIRECTION_READ) p.events |= POLLIN;
    if (direction & LIBNBD_AIO_DIRECTION_WRITE) p.events |= POLLOUT;
    if (p.events == 0) return;
    // The reactor is edge-triggered and libnbd stops reading after each whole reply: ask the
    // kernel whether more is ready before going back to sleep on the next edge.
    if (::poll(&p, 1, 0) <= 0) {
      arm(direction);
      return;
    }
    constexpr short kFailure = POLLHUP | POLLERR;
    int rc = 0;
    if ((direction & LIBNBD_AIO_DIRECTION_READ) && (p.revents & (POLLIN | kFailure))) {
      rc = nbd_aio_notify_read(handle_);
    } else if ((direction & LIBNBD_AIO_DIRECTION_WRITE) && (p.revents & (POLLOUT | kFailure))) {
      rc = nbd_aio_notify_write(handle_);
    } else {
      arm(direction);
      return;
    }
    if (rc == -1) last_error_ = libnbd_error();
    after_libnbd_call();
  }
}

void NbdConnection::arm(unsigned direction) {
  if (!watched_) return;
  using Wait = asio::posix::descriptor_base::wait_type;
  if ((direction & LIBNBD_AIO_DIRECTION_READ) && !read_armed_) {
    read_armed_ = true;
    watched_->async_wait(Wait::wait_read,
                         [self = shared_from_this(), epoch = epoch_](std::error_code ec) {
                           self->on_readiness(epoch, true, ec);
                         });
  }
  if ((direction & LIBNBD_AIO_DIRECTION_WRITE) && !write_armed_) {
    write_armed_ = true;
    watched_->async_wait(Wait::wait_write,
                         [self = shared_from_this(), epoch = epoch_](std::error_code ec) {
                           self->on_readiness(epoch, false, ec);
                         });
  }
}

void NbdConnection::on_readiness(uint64_t epoch, bool read, std::error_code ec) {
  if (epoch != epoch_) return;  // a wait on a socket we no longer watch
  (read ? read_armed_ : write_armed_) = false;
  if (ec == asio::error::operation_aborted) return;
  pump();
}

// libnbd owns its socket and closes it when the connection dies (inside whatever call noticed),
// or swaps it for another while trying the addresses of a host name. Registering libnbd's own
// descriptor with the reactor would leave the reactor holding a number that may already name
// another file. So the reactor watches a duplicate that only we close — after releasing it
// from the reactor, while it is still open, so epoll never keeps a stale registration.
bool NbdConnection::watch_socket() {
  const int fd = nbd_aio_get_fd(handle_);
  if (fd < 0) {
    unwatch_socket();
    return false;
  }
  if (watched_ && fd == libnbd_fd_ && (!connecting_ || same_socket(fd, watched_->native_handle())))
    return true;
  unwatch_socket();
  const int mine = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (mine < 0) {
    drop(std::string("cannot watch the libnbd socket: dup: ") + std::strerror(errno));
    return false;
  }
  std::error_code ec;
  watched_.emplace(context_);
  watched_->assign(mine, ec);
  if (ec) {
    watched_.reset();
    ::close(mine);
    drop("cannot watch the libnbd socket: " + ec.message());
    return false;
  }
  libnbd_fd_ = fd;
  return true;
}

void NbdConnection::unwatch_socket() {
  ++epoch_;
  read_armed_ = write_armed_ = false;
  libnbd_fd_ = -1;
  if (!watched_) return;
  // release() removes the registration (pending waits complete with operation_aborted);
  // close() would skip that, assuming the close itself ends it — untrue for a duplicate.
  const int mine = watched_->release();
  watched_.reset();
  if (mine >= 0) ::close(mine);
}

void NbdConnection::after_libnbd_call() {
  if (!handle_) return;
  const bool dead = nbd_aio_is_dead(handle_) == 1 || nbd_aio_is_closed(handle_) == 1;
  std::vector<Completion> completed;
  completed.swap(completed_);
  for (const Completion& c : completed) {
    auto it = in_flight_.find(c.id);
    if (it == in_flight_.end()) continue;
    auto request = std::move(it->second);
    in_flight_.erase(it);
    if (c.error == 0) {
      report(std::move(request), {});
    } else if (dead) {
      // libnbd fails what was in flight when the connection dies; that is no server answer.
      request->last_error = last_error_.empty() ? "connection lost" : last_error_;
      CommandOutcome lost{CommandOutcome::Kind::connection_lost, c.error, request->last_error};
      report(std::move(request), std::move(lost));
    } else {
      report(std::move(request), {CommandOutcome::Kind::server_error, c.error,
                                  std::string("the server answered ") + std::strerror(c.error)});
    }
  }
  if (dead) {
    drop(last_error_.empty() ? "the server closed the connection" : last_error_);
  } else if (connecting_ && nbd_aio_is_ready(handle_) == 1) {
    wake_.cancel();
  }
}

void NbdConnection::drop(const std::string& reason) {
  unwatch_socket();
  auto lost = std::move(in_flight_);
  in_flight_.clear();
  if (handle_) {
    nbd_close(handle_);  // frees the callbacks of commands still queued; none is called
    handle_ = nullptr;
  }
  completed_.clear();
  last_error_ = reason;
  const bool was_ready = ready_;
  ready_ = false;
  if (was_ready && !closing_) {
    if (auto owner = owner_.lock()) owner->down(*this, reason, false);
  }
  for (auto& [id, request] : lost) {
    request->last_error = reason;
    report(std::move(request), {CommandOutcome::Kind::connection_lost, ENOTCONN, reason});
  }
  wake_.cancel();
}

void NbdConnection::close_now() {
  closing_ = true;
  if (handle_) {
    // Tell the server we are leaving; whatever is still in flight is handed back below.
    if (ready_) nbd_aio_disconnect(handle_, 0);
    drop("source closed");
  }
  wake_.cancel();
}

void NbdConnection::report(std::unique_ptr<SourceRequest> request, CommandOutcome outcome) {
  if (auto owner = owner_.lock()) {
    owner->finished(*this, std::move(request), std::move(outcome));
  } else {
    request->group->finish(IoResult::failure(ESHUTDOWN, "source closed"));
  }
}

}  // namespace hydrate
