#pragma once

#include <mutex>

#include "engine/forwarding_source.h"
#include "tests/crash/seeded_random.h"

namespace hydrate::crash {

// Forwards to a Source the test owns (a FakeSource), delaying reads and block-status calls by a
// seeded number of scheduler hops so fetches interleave with client I/O and commits — without
// the wall-clock timers FakeSource's latency uses, which would make runs irreproducible.
class HopLatencySource : public ForwardingSource {
 public:
  HopLatencySource(Source& target, unsigned max_hops, uint64_t seed)
      : ForwardingSource(target), max_hops_(max_hops), random_(seed) {}

  asio::awaitable<IoResult> read(uint64_t offset, std::span<std::byte> out) override;
  asio::awaitable<IoResult> block_status(uint64_t offset, uint64_t length,
                                         ExtentList& out) override;

 private:
  unsigned next_hops();

  const unsigned max_hops_;
  std::mutex mutex_;
  SeededRandom random_;
};

}  // namespace hydrate::crash
