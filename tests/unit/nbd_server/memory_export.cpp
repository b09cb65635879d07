#include "tests/unit/nbd_server/memory_export.h"

#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <cstring>

namespace hydrate::nbd::testing {

MemoryExport::MemoryExport(ExportInfo info, std::vector<std::string> contexts)
    : info_(std::move(info)),
      contexts_(std::move(contexts)),
      data_(info_.size),
      allocated_((info_.size + kBlock - 1) / kBlock, false),
      written_((info_.size + kBlock - 1) / kBlock, false) {}

void MemoryExport::set_hook(Hook hook) {
  std::lock_guard lock(mutex_);
  hook_ = std::move(hook);
}

asio::awaitable<IoResult> MemoryExport::enter(Call call) {
  Fault fault;
  {
    std::lock_guard lock(mutex_);
    calls_.push_back(call);
    if (hook_) fault = hook_(call);
  }
  ++started_;
  auto executor = co_await asio::this_coro::executor;
  std::error_code ignored;
  if (fault.delay.count() > 0) {
    asio::steady_timer timer(executor, fault.delay);
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
  if (fault.gate) {
    // Poll the gate: the test thread opens it; the event loop keeps serving meanwhile.
    while (!fault.gate->load()) {
      asio::steady_timer timer(executor, std::chrono::milliseconds(2));
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
  }
  if (fault.error) co_return IoResult::failure(fault.error, fault.message);
  co_return IoResult::success();
}

void MemoryExport::mark(uint64_t offset, uint64_t length, bool allocated, bool whole_blocks_only) {
  if (length == 0) return;
  uint64_t first = offset / kBlock, last = (offset + length - 1) / kBlock;
  for (uint64_t b = first; b <= last; ++b) {
    uint64_t bstart = b * kBlock, bend = std::min(bstart + kBlock, info_.size);
    bool whole = offset <= bstart && offset + length >= bend;
    if (whole_blocks_only && !whole) continue;
    allocated_[b] = allocated;
  }
}

asio::awaitable<IoResult> MemoryExport::read(uint64_t offset, std::span<std::byte> out,
                                             std::vector<ByteRange>* zeros) {
  Call call{.op = "read", .offset = offset, .length = out.size(), .wants_zeros = zeros != nullptr};
  IoResult r = co_await enter(call);
  if (!r) co_return r;
  std::lock_guard lock(mutex_);
  std::memcpy(out.data(), data_.data() + offset, out.size());
  if (zeros) {
    uint64_t end = offset + out.size();
    for (uint64_t b = offset / kBlock; b * kBlock < end; ++b) {
      if (allocated_[b]) continue;
      uint64_t from = std::max(offset, b * kBlock), to = std::min(end, (b + 1) * kBlock);
      if (!zeros->empty() && zeros->back().end() == from)
        zeros->back().length += to - from;
      else
        zeros->push_back({from, to - from});
    }
  }
  co_return r;
}

asio::awaitable<IoResult> MemoryExport::write(uint64_t offset, std::span<const std::byte> data,
                                              WriteFlags flags) {
  Call call{.op = "write", .offset = offset, .length = data.size(), .fua = flags.fua};
  IoResult r = co_await enter(call);
  if (!r) co_return r;
  std::lock_guard lock(mutex_);
  std::memcpy(data_.data() + offset, data.data(), data.size());
  mark(offset, data.size(), true, false);
  for (uint64_t b = offset / kBlock; data.size() && b <= (offset + data.size() - 1) / kBlock; ++b)
    written_[b] = true;
  co_return r;
}

asio::awaitable<IoResult> MemoryExport::flush() {
  Call call{.op = "flush"};
  IoResult r = co_await enter(call);
  co_return r;
}

asio::awaitable<IoResult> MemoryExport::trim(uint64_t offset, uint64_t length, WriteFlags flags) {
  Call call{.op = "trim", .offset = offset, .length = length, .fua = flags.fua};
  IoResult r = co_await enter(call);
  if (!r) co_return r;
  std::lock_guard lock(mutex_);
  std::memset(data_.data() + offset, 0, length);
  mark(offset, length, false, true);
  co_return r;
}

asio::awaitable<IoResult> MemoryExport::zero(uint64_t offset, uint64_t length, ZeroFlags flags) {
  Call call{.op = "zero",
            .offset = offset,
            .length = length,
            .fua = flags.fua,
            .may_trim = flags.may_trim,
            .fast_only = flags.fast_only};
  IoResult r = co_await enter(call);
  if (!r) co_return r;
  if (flags.fast_only && !fast_zero_)
    co_return IoResult::failure(ENOTSUP, "memory export: fast zeroing is switched off");
  std::lock_guard lock(mutex_);
  std::memset(data_.data() + offset, 0, length);
  if (flags.may_trim)
    mark(offset, length, false, true);
  else
    mark(offset, length, true, false);
  co_return r;
}

asio::awaitable<IoResult> MemoryExport::cache(uint64_t offset, uint64_t length) {
  Call call{.op = "cache", .offset = offset, .length = length};
  IoResult r = co_await enter(call);
  co_return r;
}

asio::awaitable<IoResult> MemoryExport::block_status(size_t context, uint64_t offset,
                                                     uint64_t length, size_t max_extents,
                                                     ExtentList& out) {
  Call call{.op = "block_status",
            .offset = offset,
            .length = length,
            .context = context,
            .max_extents = max_extents};
  IoResult r = co_await enter(call);
  if (!r) co_return r;
  if (context >= contexts_.size())
    co_return IoResult::failure(EINVAL, "memory export: no context " + std::to_string(context));
  std::lock_guard lock(mutex_);
  const bool state = contexts_[context] != "base:allocation";
  uint64_t end = std::min(offset + length, info_.size);
  const size_t first = out.size();
  for (uint64_t at = offset; at < end;) {
    uint64_t b = at / kBlock;
    uint32_t flags = state ? (written_[b] ? kStateHydrated : 0)
                           : (allocated_[b] ? 0 : kAllocationHole | kAllocationZero);
    uint64_t to = std::min(end, (b + 1) * kBlock);
    if (out.size() > first && out.back().flags == flags) {
      out.back().length += to - at;
    } else {
      if (out.size() - first == max_extents) break;
      out.push_back({to - at, flags});
    }
    at = to;
  }
  co_return r;
}

std::vector<std::byte> MemoryExport::contents(uint64_t offset, uint64_t length) const {
  std::lock_guard lock(mutex_);
  return {data_.begin() + static_cast<ptrdiff_t>(offset),
          data_.begin() + static_cast<ptrdiff_t>(offset + length)};
}

void MemoryExport::fill(uint64_t offset, std::span<const std::byte> data) {
  std::lock_guard lock(mutex_);
  std::memcpy(data_.data() + offset, data.data(), data.size());
  mark(offset, data.size(), true, false);
}

bool MemoryExport::allocated(uint64_t offset) const {
  std::lock_guard lock(mutex_);
  return allocated_[offset / kBlock];
}

std::vector<MemoryExport::Call> MemoryExport::calls() const {
  std::lock_guard lock(mutex_);
  return calls_;
}

size_t MemoryExport::count(const std::string& op) const {
  std::lock_guard lock(mutex_);
  size_t n = 0;
  for (const Call& c : calls_) n += c.op == op;
  return n;
}

}  // namespace hydrate::nbd::testing
