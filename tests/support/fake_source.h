#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "engine/source.h"

namespace hydrate::test {

// A Source over bytes in memory, for unit tests of the clone engine. Reads can be delayed (a
// WAN), failed (faults), or held until the test releases them (to interleave operations
// deterministically). Zero ranges are reported through block_status as `hole|zero`.
class FakeSource : public Source {
 public:
  FakeSource(std::vector<std::byte> data, std::string identity = "fake:source");

  // Contents: any bytes, and which ranges block_status reports as zero (must read zero).
  void add_zero_range(uint64_t offset, uint64_t length);
  const std::vector<std::byte>& data() const { return data_; }

  // Behaviour knobs (thread-safe).
  void set_latency(std::chrono::microseconds latency) { latency_us_ = latency.count(); }
  void set_available(bool available) { available_ = available; }  // open() and reads fail when not
  void fail_next_reads(unsigned count, int error = EIO) {
    fail_reads_ = count;
    fail_error_ = error;
  }
  // While held, reads wait (up to 10 s) until release_reads().
  void hold_reads(bool hold) { hold_reads_ = hold; }
  void set_parallelism(unsigned p) { parallelism_ = p; }
  void set_can_discard(bool can) { can_discard_ = can; }
  // Called at every discard with the range, before it is applied (for I6 checks).
  void on_discard(std::function<void(uint64_t, uint64_t)> fn) { on_discard_ = std::move(fn); }

  // Observations.
  uint64_t reads() const { return reads_.load(); }
  uint64_t bytes_read() const { return bytes_read_.load(); }
  uint64_t block_status_calls() const { return block_status_calls_.load(); }
  bool closed() const { return closed_.load(); }
  std::vector<ByteRange> read_log() const;
  std::vector<ByteRange> discard_log() const;
  unsigned max_concurrent_reads() const { return max_concurrent_.load(); }

  // Source
  asio::awaitable<IoResult> open() override;
  uint64_t size() const override { return data_.size(); }
  std::string identity() const override { return identity_; }
  unsigned parallelism() const override { return parallelism_; }
  asio::awaitable<IoResult> read(uint64_t offset, std::span<std::byte> out) override;
  asio::awaitable<IoResult> block_status(uint64_t offset, uint64_t length,
                                         ExtentList& out) override;
  bool can_discard() const override { return can_discard_; }
  asio::awaitable<IoResult> discard(uint64_t offset, uint64_t length) override;
  SourceStats stats() const override;
  asio::awaitable<void> close() override;

 private:
  std::vector<std::byte> data_;
  std::string identity_;
  std::vector<ByteRange> zero_ranges_;  // sorted, non-overlapping

  std::atomic<int64_t> latency_us_{0};
  std::atomic<bool> available_{true};
  std::atomic<unsigned> fail_reads_{0};
  std::atomic<int> fail_error_{EIO};
  std::atomic<bool> hold_reads_{false};
  std::atomic<unsigned> parallelism_{16};
  std::atomic<bool> can_discard_{false};
  std::function<void(uint64_t, uint64_t)> on_discard_;

  std::atomic<uint64_t> reads_{0};
  std::atomic<uint64_t> bytes_read_{0};
  std::atomic<uint64_t> read_errors_{0};
  std::atomic<uint64_t> block_status_calls_{0};
  std::atomic<unsigned> concurrent_{0};
  std::atomic<unsigned> max_concurrent_{0};
  std::atomic<bool> closed_{false};
  mutable std::mutex mutex_;
  std::vector<ByteRange> read_log_;
  std::vector<ByteRange> discard_log_;
};

}  // namespace hydrate::test
