#pragma once

#include <libnbd.h>

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/io_result.h"
#include "engine/sources/retry_policy.h"
#include "engine/sources/source_request.h"

namespace hydrate {

// What one handshake told about the export.
struct NbdServerInfo {
  uint64_t size = 0;
  bool multi_conn = false;
  bool read_only = true;
  bool can_trim = false;
  bool base_allocation = false;  // the server answers NBD_CMD_BLOCK_STATUS for base:allocation
  uint64_t min_block = 0;        // 0 = not advertised
  uint64_t max_block = 0;        // 0 = not advertised
};

// How one command ended, as far as the connection can tell.
struct CommandOutcome {
  enum class Kind {
    done,             // success; for block status, request.received holds the extents
    server_error,     // the server answered with an error; the connection is fine
    connection_lost,  // the connection died (or was never usable) before an answer came
    refused,          // libnbd refused to send it (e.g. beyond the end); retrying cannot help
  };
  Kind kind = Kind::done;
  int error = 0;
  std::string message;
};

// One libnbd handle, driven by the asio event loop it lives on: no thread of its own, no
// thread per request. libnbd's socket is watched through a duplicate descriptor that only
// this class owns (see watch_socket()), and readiness is fed back with nbd_aio_notify_*.
//
// The connection reconnects by itself, with backoff, until shutdown(). When it dies, every
// request it had in flight goes back to its owner as connection_lost, so the owner can issue
// it again elsewhere. A request still unanswered at its deadline means the server hangs: the
// connection is then dropped (the only way to take a buffer back from libnbd) and re-made.
//
// Everything except start(), issue() and shutdown() runs on the connection's io_context, which
// must be run by one thread (IoThreads guarantees it): the readiness checks rely on no other
// thread harvesting epoll events between a poll() and the next async_wait().
class NbdConnection : public std::enable_shared_from_this<NbdConnection> {
 public:
  // The source that owns the connection. Called on the connection's thread, never while the
  // connection is inside a libnbd call.
  class Owner {
   public:
    virtual ~Owner() = default;
    // Before every connection attempt (e.g. start nbdkit again). A failure fails the attempt.
    virtual IoResult prepare_connect(NbdConnection& connection) = 0;
    // The handshake finished. A failure (e.g. the size changed) stops the connection for good.
    virtual IoResult accept(NbdConnection& connection, const NbdServerInfo& info) = 0;
    // The connection takes requests; `reconnected` when it had been connected before.
    virtual void ready(NbdConnection& connection, bool reconnected) = 0;
    // An attempt failed or a live connection died. `gave_up`: it will not try again.
    virtual void down(NbdConnection& connection, const std::string& error, bool gave_up) = 0;
    virtual void finished(NbdConnection& connection, std::unique_ptr<SourceRequest> request,
                          CommandOutcome outcome) = 0;
  };

  struct Settings {
    std::string uri;
    std::string name;  // in logs and libnbd debug output: "<source identity>#<index>"
    unsigned index = 0;
    std::chrono::milliseconds connect_timeout{30'000};
    // How often a live connection checks for requests past their deadline.
    std::chrono::milliseconds watchdog_interval{1'000};
    RetryPolicy backoff;
    // Stop trying when no attempt has succeeded by then (open() of the first connection).
    std::optional<std::chrono::steady_clock::time_point> give_up_at;
  };

  NbdConnection(asio::io_context& context, Settings settings, std::weak_ptr<Owner> owner);
  ~NbdConnection();
  NbdConnection(const NbdConnection&) = delete;
  NbdConnection& operator=(const NbdConnection&) = delete;

  unsigned index() const { return settings_.index; }
  const std::string& name() const { return settings_.name; }

  // From any thread. start() begins connecting; issue() sends the request, or hands it back
  // as connection_lost when the connection is not ready; shutdown() disconnects for good and
  // hands back every request in flight (to nobody once the owner is gone: they then fail).
  void start();
  void issue(std::unique_ptr<SourceRequest> request);
  asio::awaitable<void> shutdown();
  // shutdown() without waiting for it, for owners going away without close().
  void stop();

 private:
  struct CallbackToken;
  struct Completion {
    uint64_t id;
    int error;
  };

  asio::awaitable<void> run();
  asio::awaitable<bool> connect(std::string& error);
  asio::awaitable<void> serve();
  asio::awaitable<void> sleep(std::chrono::steady_clock::duration delay);

  void start_command(std::unique_ptr<SourceRequest> request);
  void pump();
  void arm(unsigned direction);
  void on_readiness(uint64_t epoch, bool read, std::error_code ec);
  bool watch_socket();
  void unwatch_socket();
  void after_libnbd_call();
  void check_deadlines();
  void drop(const std::string& reason);
  void close_now();
  void report(std::unique_ptr<SourceRequest> request, CommandOutcome outcome);
  NbdServerInfo learn_info() const;

  static int on_command_done(void* user_data, int* error);
  static int on_extents(void* user_data, const char* context, uint64_t offset, uint32_t* entries,
                        size_t count, int* error);
  static void free_token(void* user_data);

  asio::io_context& context_;
  Settings settings_;
  std::weak_ptr<Owner> owner_;

  nbd_handle* handle_ = nullptr;
  NbdServerInfo info_;
  bool connecting_ = false;
  bool ready_ = false;
  bool closing_ = false;
  std::string last_error_;  // why the last libnbd call failed or the connection died

  // Our duplicate of libnbd's socket, registered with the reactor; see watch_socket().
  std::optional<asio::posix::stream_descriptor> watched_;
  int libnbd_fd_ = -1;
  uint64_t epoch_ = 0;  // bumps when watched_ changes, so stale readiness handlers do nothing
  bool read_armed_ = false;
  bool write_armed_ = false;

  // Wakes run() when the handshake finished, the connection died, or shutdown() was called.
  asio::steady_timer wake_;

  uint64_t next_id_ = 0;
  std::unordered_map<uint64_t, std::unique_ptr<SourceRequest>> in_flight_;
  std::vector<Completion> completed_;  // filled by libnbd callbacks, drained after each call
};

}  // namespace hydrate
