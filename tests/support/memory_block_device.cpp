#include "tests/support/memory_block_device.h"

#include <algorithm>
#include <cstring>

namespace hydrate::test {

namespace {

bool mutating(MemoryBlockDevice::Operation operation) {
  return operation != MemoryBlockDevice::Operation::read;
}

}  // namespace

const char* to_string(MemoryBlockDevice::Operation operation) {
  switch (operation) {
    case MemoryBlockDevice::Operation::read:
      return "read";
    case MemoryBlockDevice::Operation::write:
      return "write";
    case MemoryBlockDevice::Operation::flush:
      return "flush";
    case MemoryBlockDevice::Operation::write_zeroes:
      return "write_zeroes";
    case MemoryBlockDevice::Operation::discard:
      return "discard";
  }
  return "?";
}

MemoryBlockDevice::MemoryBlockDevice(uint64_t size, std::string name)
    : name_(std::move(name)), bytes_(size) {}

uint64_t MemoryBlockDevice::size() const {
  std::lock_guard lock(mutex_);
  return bytes_.size();
}

MemoryBlockDevice::Verdict MemoryBlockDevice::arrive(Operation operation) {
  ++counts_[static_cast<int>(operation)];
  if (unplugged_error_ && mutating(operation)) return {*unplugged_error_, 0};
  Verdict verdict;
  for (auto it = faults_.begin(); it != faults_.end();) {
    if (it->operation != operation) {
      ++it;
      continue;
    }
    if (--it->remaining > 0) {
      ++it;
      continue;
    }
    verdict = {it->error, it->landed_bytes};
    if (it->unplug) unplugged_error_ = it->error;
    it = faults_.erase(it);
  }
  return verdict;
}

IoResult MemoryBlockDevice::check_range(const char* what, uint64_t offset, uint64_t length) const {
  if (offset > bytes_.size() || length > bytes_.size() - offset)
    return IoResult::failure(EINVAL, name_ + ": " + what + " at offset " + std::to_string(offset) +
                                         " length " + std::to_string(length) +
                                         " is past the end of the device (size " +
                                         std::to_string(bytes_.size()) + ")");
  return IoResult::success();
}

static IoResult injected(const std::string& name, const char* what, uint64_t offset, int error) {
  return IoResult::failure(error, name + ": injected " + what + " failure at offset " +
                                      std::to_string(offset) + ": " + std::strerror(error));
}

asio::awaitable<IoResult> MemoryBlockDevice::read(uint64_t offset, std::span<std::byte> out) {
  std::lock_guard lock(mutex_);
  if (int error = arrive(Operation::read).error) co_return injected(name_, "read", offset, error);
  IoResult range = check_range("read", offset, out.size());
  if (!range) co_return range;
  std::copy_n(bytes_.begin() + offset, out.size(), out.begin());
  co_return IoResult::success();
}

asio::awaitable<IoResult> MemoryBlockDevice::write(uint64_t offset, std::span<const std::byte> data,
                                                   bool fua) {
  std::lock_guard lock(mutex_);
  IoResult range = check_range("write", offset, data.size());
  Verdict verdict = arrive(Operation::write);
  if (verdict.error) {
    if (range) {
      const uint64_t landed = std::min<uint64_t>(verdict.landed_bytes, data.size());
      std::copy_n(data.begin(), landed, bytes_.begin() + offset);
    }
    co_return injected(name_, "write", offset, verdict.error);
  }
  if (!range) co_return range;
  std::copy(data.begin(), data.end(), bytes_.begin() + offset);
  log_.push_back({Operation::write, offset, data.size(), fua});
  co_return IoResult::success();
}

asio::awaitable<IoResult> MemoryBlockDevice::flush() {
  std::lock_guard lock(mutex_);
  if (int error = arrive(Operation::flush).error) co_return injected(name_, "flush", 0, error);
  log_.push_back({Operation::flush, 0, 0, false});
  co_return IoResult::success();
}

asio::awaitable<IoResult> MemoryBlockDevice::write_zeroes(uint64_t offset, uint64_t length,
                                                          bool /*may_unmap*/) {
  std::lock_guard lock(mutex_);
  if (int error = arrive(Operation::write_zeroes).error)
    co_return injected(name_, "write_zeroes", offset, error);
  IoResult range = check_range("write_zeroes", offset, length);
  if (!range) co_return range;
  std::fill_n(bytes_.begin() + offset, length, std::byte{0});
  log_.push_back({Operation::write_zeroes, offset, length, false});
  co_return IoResult::success();
}

asio::awaitable<IoResult> MemoryBlockDevice::discard(uint64_t offset, uint64_t length) {
  std::lock_guard lock(mutex_);
  if (int error = arrive(Operation::discard).error)
    co_return injected(name_, "discard", offset, error);
  IoResult range = check_range("discard", offset, length);
  if (!range) co_return range;
  // discard_zeroes() is true, so the range must read back as zeroes.
  std::fill_n(bytes_.begin() + offset, length, std::byte{0});
  log_.push_back({Operation::discard, offset, length, false});
  co_return IoResult::success();
}

asio::awaitable<IoResult> MemoryBlockDevice::allocation(uint64_t offset, uint64_t length,
                                                        ExtentList& out) {
  std::lock_guard lock(mutex_);
  if (offset >= bytes_.size())
    co_return IoResult::failure(
        EINVAL, name_ + ": allocation query at offset " + std::to_string(offset) +
                    " is past the end of the device (size " + std::to_string(bytes_.size()) + ")");
  uint64_t clipped = std::min<uint64_t>(length, bytes_.size() - offset);
  if (clipped > 0) out.push_back(Extent{clipped, 0});
  co_return IoResult::success();
}

void MemoryBlockDevice::fail_once(Operation operation, uint64_t nth, int error,
                                  uint64_t landed_bytes) {
  std::lock_guard lock(mutex_);
  faults_.push_back({operation, std::max<uint64_t>(nth, 1), error, false, landed_bytes});
}

void MemoryBlockDevice::fail_from(Operation operation, uint64_t nth, int error,
                                  uint64_t landed_bytes) {
  std::lock_guard lock(mutex_);
  faults_.push_back({operation, std::max<uint64_t>(nth, 1), error, true, landed_bytes});
}

void MemoryBlockDevice::clear_faults() {
  std::lock_guard lock(mutex_);
  faults_.clear();
  unplugged_error_.reset();
}

uint64_t MemoryBlockDevice::count(Operation operation) const {
  std::lock_guard lock(mutex_);
  return counts_[static_cast<int>(operation)];
}

std::vector<MemoryBlockDevice::LoggedOperation> MemoryBlockDevice::log() const {
  std::lock_guard lock(mutex_);
  return log_;
}

void MemoryBlockDevice::clear_log() {
  std::lock_guard lock(mutex_);
  log_.clear();
}

std::vector<std::byte> MemoryBlockDevice::contents() const {
  std::lock_guard lock(mutex_);
  return bytes_;
}

void MemoryBlockDevice::set_contents(uint64_t offset, std::span<const std::byte> data) {
  std::lock_guard lock(mutex_);
  if (offset + data.size() > bytes_.size()) bytes_.resize(offset + data.size());
  std::copy(data.begin(), data.end(), bytes_.begin() + offset);
}

void MemoryBlockDevice::resize(uint64_t size) {
  std::lock_guard lock(mutex_);
  bytes_.resize(size);
}

}  // namespace hydrate::test
