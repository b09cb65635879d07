#pragma once

#include <functional>
#include <memory>
#include <string>

#include "engine/io_threads.h"
#include "engine/source.h"
#include "engine/sources/nbd_uri.h"
#include "engine/sources/request_router.h"
#include "engine/sources/source_options.h"

namespace hydrate {

// A remote NBD export as a clone's source (nbd://, nbds://, nbd+unix://, nbds+unix://), read
// through libnbd's asynchronous API on the process's event loops: up to
// `options.connections` connections when the server advertises multi-conn (one otherwise),
// each on one IoThreads loop, many requests in flight on each. Reads larger than the server's
// request limit (at most 32 MiB) are split and fetched in parallel. Connections come back by
// themselves; a call fails only after `options.source_timeout` without success — never with
// wrong or partial data.
class NbdSource : public Source {
 public:
  // `prepare_connect` runs before every connection attempt (the nbdkit source restarts its
  // subprocess there).
  NbdSource(IoThreads& threads, NbdUri uri, SourceOptions options,
            RequestRouter::PrepareConnect prepare_connect = {});
  ~NbdSource() override;

  asio::awaitable<IoResult> open() override;
  uint64_t size() const override;
  std::string identity() const override { return uri_.identity(); }
  unsigned parallelism() const override;

  asio::awaitable<IoResult> read(uint64_t offset, std::span<std::byte> out) override;
  asio::awaitable<IoResult> read_background(uint64_t offset, std::span<std::byte> out) override;
  asio::awaitable<IoResult> block_status(uint64_t offset, uint64_t length,
                                         ExtentList& out) override;
  bool can_discard() const override;
  asio::awaitable<IoResult> discard(uint64_t offset, uint64_t length) override;

  SourceStats stats() const override { return router_->stats(); }
  asio::awaitable<void> close() override;

 private:
  IoResult check(const char* operation, uint64_t offset, uint64_t length) const;
  // Splits [offset, offset + length) into requests of at most `piece` bytes, submits them all
  // at once and waits for every one. `background`: they queue behind on-demand requests.
  asio::awaitable<IoResult> run(SourceRequest::Kind kind, uint64_t offset, uint64_t length,
                                uint64_t piece, std::byte* data, ExtentList* extents,
                                bool background = false);

  NbdUri uri_;
  SourceOptions options_;
  std::shared_ptr<RequestRouter> router_;
};

}  // namespace hydrate
