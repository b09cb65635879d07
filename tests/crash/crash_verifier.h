#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tests/crash/volatile_cache_device.h"
#include "tests/crash/workload_runner.h"

namespace hydrate::crash {

// Names of the checks, as they appear in reports (DESIGN.md §3).
namespace checks {
inline constexpr const char* kRun = "run";  // an error or hang without any fault injected
inline constexpr const char* kReadDuringWorkload = "I5-read";
inline constexpr const char* kDiscardBeforeCommit = "I6-discard";
inline constexpr const char* kMetadataLoad = "metadata-load";
inline constexpr const char* kBitWithoutData = "I1-bit-without-data";
inline constexpr const char* kDurableLost = "I4-durable-lost";
inline constexpr const char* kForeignBytes = "I5-foreign-bytes";
inline constexpr const char* kStableReads = "stable-reads";
inline constexpr const char* kReopen = "reopen";
}  // namespace checks

struct Violation {
  std::string check;   // one of checks::*
  std::string detail;  // what was wrong, with offsets, regions and the versions involved
};

// One simulated power cut of a recorded run: the journal seq it happens at and how each
// device's volatile cache loses writes (independently).
struct CutCase {
  uint64_t cut = 0;
  LossPolicy destination;
  LossPolicy metadata;
  std::string label;  // which commit-protocol step or "random"
};

struct CutVerdict {
  std::vector<Violation> violations;
  // The cut came before the metadata was ever durable (its creation was interrupted) and the
  // torn metadata was refused with a named reason: nothing was ever acknowledged, so that is
  // legitimate. Any refusal once a valid superblock was durable is a violation.
  bool refused_during_create = false;
  std::string refusal;
  uint64_t regions_loaded = 0;
};

struct VerifyOptions {
  // After reading everything once, let hydration complete, read again and close: slower, checks
  // stable reads and that the reopened clone can finish.
  bool complete_hydration = true;
};

// Checks that need no power cut: the run had no unexpected errors or hangs, every read during
// the workload returned only allowed bytes (I5, and nothing older than a write completed before
// the read was issued), and every source discard came after its regions' bits and data were
// durable (I6).
std::vector<Violation> verify_run(const RunRecord& run);

// Builds the post-crash images of `cut`, then checks: the metadata loads (or a refusal is
// legitimate), every region whose bit survived holds allowed data (I1-I3), and a fresh
// CloneVolume on the images (with the source as it is after the discards that happened before
// the cut) reads allowed data everywhere, including every durable acknowledged write (I4, I5);
// with complete_hydration, it also hydrates to completion, reads the same again and closes.
CutVerdict verify_cut(const RunRecord& run, const CutCase& cut, const VerifyOptions& options);

// The byte a discarded source range reads as afterwards in the reopened clone's source.
inline constexpr std::byte kDiscardedSourceByte{0xdd};

}  // namespace hydrate::crash
