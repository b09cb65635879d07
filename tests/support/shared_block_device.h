#pragma once

#include <memory>

#include "engine/block_device.h"

namespace hydrate::test {

// Forwards every call to a device the test keeps owning, so an engine object can "own" it
// (and be destroyed, reopened, crashed) while the test still inspects the device.
class SharedBlockDevice : public BlockDevice {
 public:
  explicit SharedBlockDevice(BlockDevice& target) : target_(target) {}
  uint64_t size() const override { return target_.size(); }
  const std::string& name() const override { return target_.name(); }
  asio::awaitable<IoResult> read(uint64_t offset, std::span<std::byte> out) override {
    return target_.read(offset, out);
  }
  asio::awaitable<IoResult> write(uint64_t offset, std::span<const std::byte> data,
                                  bool fua) override {
    return target_.write(offset, data, fua);
  }
  asio::awaitable<IoResult> flush() override { return target_.flush(); }
  asio::awaitable<IoResult> write_uncached(uint64_t offset,
                                           std::span<const std::byte> data) override {
    return target_.write_uncached(offset, data);
  }
  asio::awaitable<IoResult> write_zeroes(uint64_t offset, uint64_t length,
                                         bool may_unmap) override {
    return target_.write_zeroes(offset, length, may_unmap);
  }
  asio::awaitable<IoResult> discard(uint64_t offset, uint64_t length) override {
    return target_.discard(offset, length);
  }
  asio::awaitable<IoResult> allocation(uint64_t offset, uint64_t length,
                                       ExtentList& out) override {
    return target_.allocation(offset, length, out);
  }
  bool fast_zero() const override { return target_.fast_zero(); }
  bool discard_zeroes() const override { return target_.discard_zeroes(); }

 private:
  BlockDevice& target_;
};

}  // namespace hydrate::test
