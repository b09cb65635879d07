#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "engine/export.h"

namespace hydrate::nbd::testing {

// An in-memory Export for server tests. Storage is tracked in 4 KiB blocks: blocks never
// written (or trimmed / zeroed with may_trim) are holes, read back as zeros, are reported in
// read()'s `zeros` and as HOLE|ZERO in "base:allocation". The second context,
// "hydrate:state", flags blocks written since creation. Every call is recorded, and a hook
// may delay it, fail it, or hold it until the test opens a gate.
class MemoryExport : public Export {
 public:
  static constexpr uint64_t kBlock = 4096;

  struct Call {
    std::string op;  // "read", "write", "flush", "trim", "zero", "cache", "block_status"
    uint64_t offset = 0;
    uint64_t length = 0;
    bool fua = false;
    bool may_trim = false;
    bool fast_only = false;
    bool wants_zeros = false;
    size_t context = 0;
    size_t max_extents = 0;
  };

  // What the hook wants done with a call.
  struct Fault {
    int error = 0;  // fail with this errno
    std::string message;
    std::chrono::milliseconds delay{0};
    std::atomic<bool>* gate = nullptr;  // hold the call until *gate becomes true
  };
  using Hook = std::function<Fault(const Call&)>;

  explicit MemoryExport(ExportInfo info,
                        std::vector<std::string> contexts = {"base:allocation", "hydrate:state"});

  const ExportInfo& info() const override { return info_; }
  asio::awaitable<IoResult> read(uint64_t offset, std::span<std::byte> out,
                                 std::vector<ByteRange>* zeros) override;
  asio::awaitable<IoResult> write(uint64_t offset, std::span<const std::byte> data,
                                  WriteFlags flags) override;
  asio::awaitable<IoResult> flush() override;
  asio::awaitable<IoResult> trim(uint64_t offset, uint64_t length, WriteFlags flags) override;
  asio::awaitable<IoResult> zero(uint64_t offset, uint64_t length, ZeroFlags flags) override;
  asio::awaitable<IoResult> cache(uint64_t offset, uint64_t length) override;
  std::vector<std::string> meta_contexts() const override { return contexts_; }
  asio::awaitable<IoResult> block_status(size_t context, uint64_t offset, uint64_t length,
                                         size_t max_extents, ExtentList& out) override;

  void set_hook(Hook hook);
  // When false, zero(fast_only) fails with ENOTSUP, as a device without cheap zeroing would.
  void set_fast_zero_supported(bool supported) { fast_zero_ = supported; }

  // Test access (thread-safe copies).
  std::vector<std::byte> contents(uint64_t offset, uint64_t length) const;
  void fill(uint64_t offset, std::span<const std::byte> data);  // marks blocks allocated
  bool allocated(uint64_t offset) const;
  std::vector<Call> calls() const;
  size_t count(const std::string& op) const;
  // Calls that have started (entered the export) — useful to wait for a request to arrive.
  size_t started() const { return started_.load(); }

 private:
  // By value: GCC 12 mishandles temporaries bound to coroutine reference parameters.
  asio::awaitable<IoResult> enter(Call call);
  void mark(uint64_t offset, uint64_t length, bool allocated, bool whole_blocks_only);

  ExportInfo info_;
  std::vector<std::string> contexts_;
  mutable std::mutex mutex_;
  std::vector<std::byte> data_;
  std::vector<bool> allocated_;
  std::vector<bool> written_;
  std::vector<Call> calls_;
  Hook hook_;
  std::atomic<size_t> started_{0};
  std::atomic<bool> fast_zero_{true};
};

}  // namespace hydrate::nbd::testing
