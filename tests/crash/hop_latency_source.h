#pragma once

#include <mutex>

#include "engine/source.h"
#include "tests/crash/seeded_random.h"

namespace hydrate::crash {

// Forwards to a Source the test owns (a FakeSource), delaying reads and block-status calls by a
// seeded number of scheduler hops so fetches interleave with client I/O and commits — without
// the wall-clock timers FakeSource's latency uses, which would make runs irreproducible.
class HopLatencySource : public Source {
 public:
  HopLatencySource(Source& target, unsigned max_hops, uint64_t seed)
      : target_(target), max_hops_(max_hops), random_(seed) {}

  asio::awaitable<IoResult> open() override { return target_.open(); }
  uint64_t size() const override { return target_.size(); }
  std::string identity() const override { return target_.identity(); }
  unsigned parallelism() const override { return target_.parallelism(); }
  asio::awaitable<IoResult> read(uint64_t offset, std::span<std::byte> out) override;
  asio::awaitable<IoResult> block_status(uint64_t offset, uint64_t length,
                                         ExtentList& out) override;
  bool can_discard() const override { return target_.can_discard(); }
  asio::awaitable<IoResult> discard(uint64_t offset, uint64_t length) override {
    return target_.discard(offset, length);
  }
  SourceStats stats() const override { return target_.stats(); }
  asio::awaitable<void> close() override { return target_.close(); }

 private:
  unsigned next_hops();

  Source& target_;
  const unsigned max_hops_;
  std::mutex mutex_;
  SeededRandom random_;
};

}  // namespace hydrate::crash
