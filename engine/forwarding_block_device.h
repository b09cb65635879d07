#pragma once

#include "engine/block_device.h"

namespace hydrate {

// A BlockDevice that forwards every call to another one, which the caller keeps owning.
// Wrappers that change a few calls (gates, journals, sharing one device between owners) derive
// from it and override only those, so a new BlockDevice call cannot be forgotten in one of them.
class ForwardingBlockDevice : public BlockDevice {
 public:
  explicit ForwardingBlockDevice(BlockDevice& target) : target_(target) {}

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
  asio::awaitable<IoResult> allocation(uint64_t offset, uint64_t length, ExtentList& out) override {
    return target_.allocation(offset, length, out);
  }
  bool fast_zero() const override { return target_.fast_zero(); }
  bool discard_zeroes() const override { return target_.discard_zeroes(); }

 protected:
  BlockDevice& target() const { return target_; }

 private:
  BlockDevice& target_;
};

}  // namespace hydrate
