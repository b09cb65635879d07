#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/io_result.h"
#include "tests/crash/content_oracle.h"
#include "tests/crash/event_journal.h"
#include "tests/crash/volatile_cache_device.h"
#include "tests/crash/workload.h"

namespace hydrate::crash {

// The identity the source reports (and the metadata records): "crash:source/" padded to the
// case's identity_length.
std::string source_identity(const CaseParams& params);

// A client read as it happened, for the I5 check of reads during the workload.
struct ReadRecord {
  ClientOp op;
  uint64_t issued = 0;
  uint64_t completed = 0;
  std::vector<std::byte> data;
};

// A source discard (discard_source_after_commit) and when it happened.
struct SourceDiscard {
  uint64_t seq = 0;
  uint64_t offset = 0;
  uint64_t length = 0;
};

// Everything one run of a workload left behind: the devices' histories (to build any post-crash
// image later), the journal, what the client saw and what the oracle needs.
struct RunRecord {
  Workload workload;
  std::unique_ptr<EventJournal> journal;
  std::unique_ptr<VolatileCacheDevice> destination;
  std::unique_ptr<VolatileCacheDevice> metadata;
  std::shared_ptr<const std::vector<std::byte>> source;  // contents (holes read zero)
  std::unique_ptr<ContentOracle> oracle;
  std::vector<ReadRecord> reads;
  std::vector<SourceDiscard> discards;
  uint64_t opened = kNever;  // seq of the event marking that CloneVolume::open returned
  // The first cut at which the durable metadata loads: from here on a refusal after a crash is
  // a failure (the format must never lose its only valid superblock). kNever if it never did.
  uint64_t metadata_created = kNever;
  uint64_t end = 0;  // journal length after the clean close
  // Things that must not happen in a run without faults (an unexpected error, a hang), each
  // with context.
  std::vector<std::string> problems;
};

// Runs `workload` on a fresh CloneVolume over VolatileCacheDevices and a FakeSource, on one
// single-threaded io_context: opens (creating the metadata), runs every connection's requests
// concurrently while background hydration runs, optionally waits for hydration to complete,
// and closes cleanly. Deterministic for a given workload.
RunRecord run_workload(const Workload& workload);

// The source contents a workload's seed and holes produce.
std::vector<std::byte> source_contents(const CaseParams& params);

}  // namespace hydrate::crash
