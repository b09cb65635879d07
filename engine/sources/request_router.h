#pragma once

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/async_event.h"
#include "engine/io_result.h"
#include "engine/io_threads.h"
#include "engine/source.h"
#include "engine/sources/nbd_connection.h"
#include "engine/sources/nbd_uri.h"
#include "engine/sources/source_options.h"
#include "engine/sources/source_request.h"

namespace hydrate {

// The shared state of one NBD source: its connections, and every request not yet answered.
// A request goes to the least-loaded live connection; when that connection dies it comes back
// here and is issued again; when the server answers EIO it is retried after a backoff; when no
// connection is live it waits here. It fails only when its deadline passes (EIO, with the last
// error seen), when the source turned out to be another one (size changed), or on close().
//
// On-demand first (DESIGN §5): a request for a client (not `background`) is issued at once, to
// the live connection with the fewest bytes outstanding. Background requests take at most
// depth_per_connection minus a reserve on each connection (so the server always has a worker
// free for a client's read) and otherwise wait here, behind every on-demand request: whatever
// waits in hydrate, a client's read overtakes it.
//
// Thread-safe: callers submit from their own threads, connections report from theirs.
// Connections hold it weakly, so it can go away while they still have callbacks queued.
class RequestRouter : public NbdConnection::Owner,
                      public std::enable_shared_from_this<RequestRouter> {
 public:
  using PrepareConnect = std::function<IoResult()>;

  RequestRouter(IoThreads& threads, NbdUri uri, SourceOptions options,
                PrepareConnect prepare_connect);
  ~RequestRouter() override;

  // Connects the first connection (retrying until the connect timeout), learns the export,
  // then opens the other connections in the background if the server allows multi-conn.
  asio::awaitable<IoResult> open();
  // Fails every request with ESHUTDOWN and disconnects every connection.
  asio::awaitable<void> close();
  // close() without waiting, for a source destroyed without being closed.
  void close_detached();

  // From any thread. The request's group learns the outcome.
  void submit(std::unique_ptr<SourceRequest> request);

  bool is_open() const;
  bool is_closed() const;
  // What the first handshake told; all zero before open() succeeded.
  NbdServerInfo server() const;
  // Largest read sent as one command: the server's maximum, at most 32 MiB.
  uint64_t max_request() const;
  // 1 until the server turned out to allow multi-conn, then the configured count.
  unsigned planned_connections() const;
  SourceStats stats() const;

  // NbdConnection::Owner
  IoResult prepare_connect(NbdConnection& connection) override;
  IoResult accept(NbdConnection& connection, const NbdServerInfo& info) override;
  void ready(NbdConnection& connection, bool reconnected) override;
  void down(NbdConnection& connection, const std::string& error, bool gave_up) override;
  void finished(NbdConnection& connection, std::unique_ptr<SourceRequest> request,
                CommandOutcome outcome) override;

 private:
  using Clock = std::chrono::steady_clock;
  enum class State { created, opening, open, failed };
  struct Slot {
    std::shared_ptr<NbdConnection> connection;
    bool ready = false;
    unsigned assigned = 0;    // requests given to it and not yet finished
    unsigned background = 0;  // of which background
    uint64_t bytes = 0;       // their lengths
  };
  using Assignment = std::pair<std::shared_ptr<NbdConnection>, std::unique_ptr<SourceRequest>>;

  std::shared_ptr<NbdConnection> add_connection_locked(std::optional<Clock::time_point> give_up_at);
  // The connection `request` goes to now, or nullptr: none live, or (background) all full.
  Slot* slot_for_locked(const SourceRequest& request);
  static void assign(Slot& slot, const SourceRequest& request);
  void dispatch_pending_locked(Clock::time_point now, std::vector<Assignment>& out);
  void wait_locked(std::unique_ptr<SourceRequest> request);
  asio::awaitable<void> sweep(std::shared_ptr<RequestRouter> keep_alive);
  IoResult failure(int error, const SourceRequest& request, const std::string& why) const;
  IoResult deadline_failure(const SourceRequest& request) const;
  static void issue_all(std::vector<Assignment>& assignments);

  IoThreads& threads_;
  const NbdUri uri_;
  const std::string identity_;
  const SourceOptions options_;
  const PrepareConnect prepare_connect_;
  const unsigned background_depth_;  // background requests one connection may carry
  asio::io_context& home_;           // where the sweeper runs

  mutable std::mutex mutex_;
  State state_ = State::created;
  bool closed_ = false;
  IoResult open_result_;
  std::shared_ptr<AsyncEvent> opened_;
  bool server_known_ = false;  // the first handshake set server_; later ones must match it
  NbdServerInfo server_;
  uint64_t max_request_ = 0;
  unsigned planned_connections_ = 1;
  std::string refusal_;  // set when a reconnect found another source: everything fails
  std::vector<Slot> slots_;
  // Requests waiting for a live connection, or for their retry time after a server error.
  std::vector<std::unique_ptr<SourceRequest>> waiting_;
  bool sweeping_ = false;

  uint64_t bytes_read_ = 0;
  uint64_t reads_ = 0;
  uint64_t read_errors_ = 0;
  uint64_t block_status_calls_ = 0;
  uint64_t reconnects_ = 0;
  std::string last_error_;
};

}  // namespace hydrate
