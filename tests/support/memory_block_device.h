#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/block_device.h"

namespace hydrate::test {

// A BlockDevice over a byte vector, for unit tests. Writes are visible to reads at once and
// there is no volatile cache to lose (tests/crash models that); flush() only counts. Every
// operation completes synchronously inside the awaitable, so it needs no executor beyond the one
// running the test coroutine.
//
// What tests can observe and control:
//   - counters of each operation kind (reads, writes, flushes, ...);
//   - a log of the operations that change or order the device (write, write_zeroes, discard,
//     flush) with their offsets and lengths, in the order they arrived;
//   - fault injection: make the nth next operation of a kind fail with an errno, once or from
//     then on ("power cut": nothing after it reaches the device).
// A failed operation changes nothing (unless a torn write was asked for). Requests outside the
// device fail with EINVAL.
// Thread-safe: one mutex guards everything.
class MemoryBlockDevice : public BlockDevice {
 public:
  enum class Operation { read, write, flush, write_zeroes, discard };

  struct LoggedOperation {
    Operation operation = Operation::write;
    uint64_t offset = 0;  // 0 for flush
    uint64_t length = 0;  // 0 for flush
    bool fua = false;

    bool operator==(const LoggedOperation&) const = default;
  };

  explicit MemoryBlockDevice(uint64_t size, std::string name = "memory");

  // BlockDevice
  uint64_t size() const override;
  const std::string& name() const override { return name_; }
  asio::awaitable<IoResult> read(uint64_t offset, std::span<std::byte> out) override;
  asio::awaitable<IoResult> write(uint64_t offset, std::span<const std::byte> data,
                                  bool fua) override;
  asio::awaitable<IoResult> flush() override;
  asio::awaitable<IoResult> write_zeroes(uint64_t offset, uint64_t length, bool may_unmap) override;
  asio::awaitable<IoResult> discard(uint64_t offset, uint64_t length) override;
  // Reports the whole requested range as one allocated data extent: the fake does not track
  // holes.
  asio::awaitable<IoResult> allocation(uint64_t offset, uint64_t length, ExtentList& out) override;
  bool fast_zero() const override { return true; }
  bool discard_zeroes() const override { return true; }

  // The `nth` next operation of `operation` (1 = the very next one) fails with `error`. For a
  // failing write, its first `landed_bytes` bytes still reach the device (a torn write).
  void fail_once(Operation operation, uint64_t nth, int error, uint64_t landed_bytes = 0);
  // The `nth` next operation of `operation` and every later one of any mutating kind (write,
  // write_zeroes, discard, flush) fail with `error`: the device is "unplugged" at that point.
  // Reads keep working so a test can inspect what reached the device.
  void fail_from(Operation operation, uint64_t nth, int error, uint64_t landed_bytes = 0);
  // Removes every pending fault and reconnects an unplugged device.
  void clear_faults();

  uint64_t count(Operation operation) const;  // operations attempted, including failed ones
  uint64_t reads() const { return count(Operation::read); }
  uint64_t writes() const { return count(Operation::write); }
  uint64_t flushes() const { return count(Operation::flush); }
  // Successful write, write_zeroes, discard and flush operations, in order.
  std::vector<LoggedOperation> log() const;
  void clear_log();

  // Direct access for setting up and corrupting contents; bypasses counters, log and faults.
  std::vector<std::byte> contents() const;
  void set_contents(uint64_t offset, std::span<const std::byte> data);
  // Grows (zero-filled) or shrinks the device.
  void resize(uint64_t size);

 private:
  struct Fault {
    Operation operation;
    uint64_t remaining;  // matching operations still to pass before the fault fires
    int error;
    bool unplug;
    uint64_t landed_bytes;
  };
  struct Verdict {
    int error = 0;
    uint64_t landed_bytes = 0;
  };

  // Counts the operation and says whether (and how) it must fail.
  Verdict arrive(Operation operation);
  IoResult check_range(const char* what, uint64_t offset, uint64_t length) const;

  const std::string name_;
  mutable std::mutex mutex_;
  std::vector<std::byte> bytes_;
  uint64_t counts_[5] = {};
  std::vector<LoggedOperation> log_;
  std::vector<Fault> faults_;
  std::optional<int> unplugged_error_;
};

const char* to_string(MemoryBlockDevice::Operation operation);

}  // namespace hydrate::test
