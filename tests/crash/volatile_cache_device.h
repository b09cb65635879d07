#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/block_device.h"
#include "tests/crash/event_journal.h"
#include "tests/crash/seeded_random.h"

namespace hydrate::crash {

inline constexpr uint64_t kSectorSize = 512;

// Which of the writes a power cut left in the volatile cache reach the media anyway.
struct LossPolicy {
  enum class Mode : uint8_t {
    keep_none,  // only what a flush (or FUA) made durable: the harshest cut
    keep_all,   // every write issued before the cut landed in full
    random,     // each non-durable write lands or not, possibly torn at sector boundaries
  };
  Mode mode = Mode::random;
  uint64_t seed = 0;
  unsigned keep_percent = 50;  // random: chance a non-durable write lands at all
  unsigned tear_percent = 30;  // random: chance a landing write keeps only some of its sectors

  static LossPolicy none() { return {Mode::keep_none}; }
  static LossPolicy all() { return {Mode::keep_all}; }
  static LossPolicy random_from(uint64_t seed) { return {Mode::random, seed}; }
};

std::string to_string(const LossPolicy& policy);

// A BlockDevice with a volatile write cache, for crash simulation (DESIGN.md §9). Reads see every
// completed write at once, like a real device with its cache; what survives a power cut is
// decided afterwards from the recorded history:
//   - a write is durable once it completed with FUA, or completed before a flush was *issued*
//     that then completed (a write still in flight while a flush runs may or may not be covered);
//   - at a cut, the post-crash image holds every durable write, plus a subset (chosen by a
//     LossPolicy) of the writes that were not durable or still in flight, each of those possibly
//     torn: it keeps an arbitrary subset of the 512-byte sectors it covers.
// write_zeroes and discard are recorded as writes of zeroes (discard_zeroes() is true).
//
// Every mutating operation is stamped in an EventJournal shared with the other devices, the
// source and the client workload, so one cut point means the same instant everywhere. Operations
// take a seeded number of scheduler hops (never wall-clock time) so runs are deterministic.
//
// power_cut() stops the world for a live test: every later operation, and every one still in
// flight, fails with EIO and changes nothing. The campaign mostly cuts after the fact instead
// (image_after_crash at any recorded seq), which is equivalent because nothing after the cut can
// reach the image.
//
// Thread-safe (one mutex); determinism needs a single-threaded io_context.
class VolatileCacheDevice : public BlockDevice {
 public:
  struct Options {
    std::string name = "volatile";
    Actor actor = Actor::destination;
    unsigned max_latency_hops = 0;  // each operation takes 0..max scheduler hops
    uint64_t latency_seed = 1;
    bool fixed_latency = false;  // every operation takes exactly max_latency_hops
  };

  // What happened to one mutating operation.
  struct Record {
    Action action = Action::write;  // write, write_zeroes, discard or flush
    uint64_t offset = 0;
    uint64_t length = 0;
    bool fua = false;
    std::shared_ptr<const std::vector<std::byte>> data;  // null: zeroes (and for flushes)
    uint64_t issued = 0;
    uint64_t completed = kNever;  // kNever: failed, or still in flight when the run ended
    bool ok = false;
  };

  VolatileCacheDevice(std::vector<std::byte> initial, EventJournal& journal, Options options);

  // BlockDevice
  uint64_t size() const override { return size_; }
  const std::string& name() const override { return options_.name; }
  // Sees every completed write, durable or not, as a device reading through its cache does.
  asio::awaitable<IoResult> read(uint64_t offset, std::span<std::byte> out) override;
  // Recorded; durable once it completed with FUA, or once a flush issued after it had
  // completed has itself completed.
  asio::awaitable<IoResult> write(uint64_t offset, std::span<const std::byte> data,
                                  bool fua) override;
  asio::awaitable<IoResult> flush() override { return mutate(Action::flush, 0, 0, nullptr, false); }
  // Both recorded as writes of zeroes (null data), so a power cut can lose or tear them like
  // any write.
  asio::awaitable<IoResult> write_zeroes(uint64_t offset, uint64_t length,
                                         bool /*may_unmap*/) override {
    return mutate(Action::write_zeroes, offset, length, nullptr, false);
  }
  asio::awaitable<IoResult> discard(uint64_t offset, uint64_t length) override {
    return mutate(Action::discard, offset, length, nullptr, false);
  }
  bool fast_zero() const override { return true; }
  bool discard_zeroes() const override { return true; }
  // All data: the simulator keeps no holes (the campaign's sources have them, not its devices).
  asio::awaitable<IoResult> allocation(uint64_t offset, uint64_t length, ExtentList& out) override;

  void power_cut();
  bool cut() const { return cut_.load(); }

  // The media after a power cut at journal seq `cut` (see the class comment).
  std::vector<std::byte> image_after_crash(uint64_t cut, const LossPolicy& policy) const;
  // What is guaranteed to be on the media at `cut`: image_after_crash with keep_none.
  std::vector<std::byte> durable_image(uint64_t cut) const;
  // What reads return now (every completed write).
  std::vector<std::byte> visible() const;
  // Whether record `index` is durable at `cut`.
  bool durable_at(size_t index, uint64_t cut) const;
  // The latest seq at which a completed flush was issued before `cut` (0: none). Writes completed
  // before it are durable.
  uint64_t flush_barrier(uint64_t cut) const;

  std::vector<Record> records() const;
  uint64_t flushes() const;

 private:
  asio::awaitable<IoResult> mutate(Action action, uint64_t offset, uint64_t length,
                                   std::shared_ptr<const std::vector<std::byte>> data, bool fua);
  IoResult check_range(const char* what, uint64_t offset, uint64_t length) const;
  unsigned next_latency();
  uint64_t flush_barrier_locked(uint64_t cut) const;
  bool durable_locked(const Record& record, uint64_t cut, uint64_t barrier) const;

  const Options options_;
  const uint64_t size_;
  EventJournal& journal_;
  std::atomic<bool> cut_{false};

  mutable std::mutex mutex_;
  const std::vector<std::byte> initial_;
  std::vector<std::byte> visible_;
  std::vector<Record> records_;
  SeededRandom latency_;
};

}  // namespace hydrate::crash
