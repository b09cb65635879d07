#pragma once

#include "engine/source.h"

namespace hydrate {

// A Source that forwards every call to another one, which the caller keeps owning. Wrappers
// that change a few calls (latency, faults, sharing one source between owners) derive from it
// and override only those, so a new Source call cannot be forgotten in one of them.
class ForwardingSource : public Source {
 public:
  explicit ForwardingSource(Source& target) : target_(target) {}

  asio::awaitable<IoResult> open() override { return target_.open(); }
  uint64_t size() const override { return target_.size(); }
  std::string identity() const override { return target_.identity(); }
  unsigned parallelism() const override { return target_.parallelism(); }
  asio::awaitable<IoResult> read(uint64_t offset, std::span<std::byte> out) override {
    return target_.read(offset, out);
  }
  asio::awaitable<IoResult> read_background(uint64_t offset, std::span<std::byte> out) override {
    return target_.read_background(offset, out);
  }
  asio::awaitable<IoResult> block_status(uint64_t offset, uint64_t length,
                                         ExtentList& out) override {
    return target_.block_status(offset, length, out);
  }
  bool can_discard() const override { return target_.can_discard(); }
  asio::awaitable<IoResult> discard(uint64_t offset, uint64_t length) override {
    return target_.discard(offset, length);
  }
  SourceStats stats() const override { return target_.stats(); }
  asio::awaitable<void> close() override { return target_.close(); }

 protected:
  Source& target() const { return target_; }

 private:
  Source& target_;
};

}  // namespace hydrate
