#pragma once

#include <cstdint>

namespace hydrate::crash {

// A small, fully specified pseudo-random generator (SplitMix64). The campaign's promise is "a
// seed reproduces a case exactly", so nothing here may depend on the standard library's
// implementation-defined distributions.
class SeededRandom {
 public:
  explicit SeededRandom(uint64_t seed) : state_(seed) {}

  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n); 0 when n is 0.
  uint64_t below(uint64_t n) {
    if (n == 0) return 0;
    return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
  }
  // Uniform in [lo, hi].
  uint64_t between(uint64_t lo, uint64_t hi) { return lo + below(hi - lo + 1); }
  // True with probability percent / 100.
  bool chance(unsigned percent) { return below(100) < percent; }

 private:
  uint64_t state_;
};

// Mixes several values into one seed, so derived streams (per device, per op) are independent.
inline uint64_t mix_seed(uint64_t a, uint64_t b) {
  SeededRandom r(a ^ (b * 0x9e3779b97f4a7c15ull) ^ 0x5851f42d4c957f2dull);
  r.next();
  return r.next();
}

}  // namespace hydrate::crash
