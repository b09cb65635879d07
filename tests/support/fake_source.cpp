#include "tests/support/fake_source.h"

#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <algorithm>
#include <cstring>

namespace hydrate::test {

FakeSource::FakeSource(std::vector<std::byte> data, std::string identity)
    : data_(std::move(data)), identity_(std::move(identity)) {}

void FakeSource::add_zero_range(uint64_t offset, uint64_t length) {
  std::fill(data_.begin() + offset, data_.begin() + offset + length, std::byte{0});
  zero_ranges_.push_back({offset, length});
  std::sort(zero_ranges_.begin(), zero_ranges_.end(),
            [](auto& a, auto& b) { return a.offset < b.offset; });
}

asio::awaitable<IoResult> FakeSource::open() {
  closed_ = false;
  if (!available_) co_return IoResult::failure(ECONNREFUSED, "fake source unavailable");
  co_return IoResult::success();
}

asio::awaitable<IoResult> FakeSource::read(uint64_t offset, std::span<std::byte> out) {
  auto executor = co_await asio::this_coro::executor;
  unsigned now = ++concurrent_;
  unsigned seen = max_concurrent_.load();
  while (now > seen && !max_concurrent_.compare_exchange_weak(seen, now)) {
  }
  struct Leave {
    std::atomic<unsigned>& c;
    ~Leave() { --c; }
  } leave{concurrent_};

  if (int64_t us = latency_us_.load(); us > 0) {
    asio::steady_timer timer(executor, std::chrono::microseconds(us));
    co_await timer.async_wait(asio::use_awaitable);
  }
  for (int i = 0; hold_reads_.load() && i < 10000; ++i) {
    asio::steady_timer timer(executor, std::chrono::milliseconds(1));
    co_await timer.async_wait(asio::use_awaitable);
  }
  if (closed_) co_return IoResult::failure(ESHUTDOWN, "fake source closed");
  if (!available_) {
    ++read_errors_;
    co_return IoResult::failure(EIO, "fake source unavailable");
  }
  unsigned pending = fail_reads_.load();
  while (pending > 0 && !fail_reads_.compare_exchange_weak(pending, pending - 1)) {
  }
  if (pending > 0) {
    ++read_errors_;
    co_return IoResult::failure(fail_error_.load(), "injected source read error");
  }
  if (offset + out.size() > data_.size())
    co_return IoResult::failure(EINVAL, "fake source read past the end");
  std::memcpy(out.data(), data_.data() + offset, out.size());
  ++reads_;
  bytes_read_ += out.size();
  {
    std::lock_guard lock(mutex_);
    read_log_.push_back({offset, out.size()});
  }
  co_return IoResult::success();
}

asio::awaitable<IoResult> FakeSource::block_status(uint64_t offset, uint64_t length,
                                                   ExtentList& out) {
  ++block_status_calls_;
  if (!available_) co_return IoResult::failure(EIO, "fake source unavailable");
  uint64_t end = std::min<uint64_t>(offset + length, data_.size());
  uint64_t at = offset;
  while (at < end) {
    // Is `at` inside a zero range?
    const ByteRange* inside = nullptr;
    uint64_t next_zero = end;
    for (auto& z : zero_ranges_) {
      if (at >= z.offset && at < z.end()) {
        inside = &z;
        break;
      }
      if (z.offset > at) {
        next_zero = std::min(next_zero, z.offset);
        break;
      }
    }
    if (inside) {
      uint64_t stop = std::min(end, inside->end());
      if (!out.empty() && out.back().flags == (kAllocationHole | kAllocationZero))
        out.back().length += stop - at;
      else
        out.push_back({stop - at, kAllocationHole | kAllocationZero});
      at = stop;
    } else {
      uint64_t stop = std::min(end, next_zero);
      if (!out.empty() && out.back().flags == 0)
        out.back().length += stop - at;
      else
        out.push_back({stop - at, 0});
      at = stop;
    }
  }
  co_return IoResult::success();
}

asio::awaitable<IoResult> FakeSource::discard(uint64_t offset, uint64_t length) {
  if (on_discard_) on_discard_(offset, length);
  std::lock_guard lock(mutex_);
  discard_log_.push_back({offset, length});
  co_return IoResult::success();
}

SourceStats FakeSource::stats() const {
  SourceStats s;
  s.bytes_read = bytes_read_;
  s.reads = reads_;
  s.read_errors = read_errors_;
  s.block_status_calls = block_status_calls_;
  s.connected = available_ && !closed_;
  s.connections = s.connected ? 1 : 0;
  return s;
}

asio::awaitable<void> FakeSource::close() {
  closed_ = true;
  co_return;
}

std::vector<ByteRange> FakeSource::read_log() const {
  std::lock_guard lock(mutex_);
  return read_log_;
}

std::vector<ByteRange> FakeSource::discard_log() const {
  std::lock_guard lock(mutex_);
  return discard_log_;
}

}  // namespace hydrate::test
