#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/io_threads.h"
#include "engine/source.h"
#include "engine/sources/nbd_source.h"
#include "engine/sources/nbdkit_process.h"
#include "engine/sources/source_options.h"

namespace hydrate {

// A clone source served by an nbdkit plugin that hydrate runs itself
// (config: `source: {nbdkit: [curl, "url=https://…"]}`): nbdkit listens on a Unix socket in a
// private temporary directory and an NbdSource reads from it, several connections when the
// plugin allows multi-conn. If nbdkit dies it is started again as part of reconnecting.
class NbdkitSource : public Source {
 public:
  NbdkitSource(IoThreads& threads, std::vector<std::string> args, SourceOptions options);
  ~NbdkitSource() override;

  // Starts nbdkit, waits for its socket (up to the connect timeout), then opens the NBD source.
  asio::awaitable<IoResult> open() override;
  uint64_t size() const override;
  // "nbdkit:" and the arguments, e.g. "nbdkit:curl url=https://example.com/disk.img", with
  // credentials masked (NbdkitProcess::describe).
  std::string identity() const override;
  unsigned parallelism() const override;

  asio::awaitable<IoResult> read(uint64_t offset, std::span<std::byte> out) override;
  asio::awaitable<IoResult> read_background(uint64_t offset, std::span<std::byte> out) override;
  asio::awaitable<IoResult> block_status(uint64_t offset, uint64_t length,
                                         ExtentList& out) override;
  bool can_discard() const override;
  asio::awaitable<IoResult> discard(uint64_t offset, uint64_t length) override;

  SourceStats stats() const override;
  // Closes the NBD connections, then stops nbdkit and removes its directory.
  asio::awaitable<void> close() override;

  // The running nbdkit (null before open()); tests kill it to prove recovery.
  const NbdkitProcess* process() const { return process_.get(); }

 private:
  IoResult not_open() const;
  void remove_directory();

  IoThreads& threads_;
  const std::vector<std::string> args_;
  const SourceOptions options_;
  std::string directory_;
  std::shared_ptr<NbdkitProcess> process_;
  std::unique_ptr<NbdSource> nbd_;
  bool closed_ = false;
};

}  // namespace hydrate
