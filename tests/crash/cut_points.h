#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/crash/crash_verifier.h"
#include "tests/crash/event_journal.h"

namespace hydrate::crash {

struct CutPoint {
  uint64_t seq = 0;
  std::string label;  // e.g. "after metadata flush completed"
};

// The steps of the commit protocol, found from what the devices saw rather than from engine
// internals: a cut just before and just after every metadata operation (bitmap writes, their
// flush, the superblock write, its flush — and the creation of the metadata) and every
// destination flush, in journal order. `end` bounds the seqs returned.
std::vector<CutPoint> commit_protocol_cuts(const std::vector<Event>& events, uint64_t end);

// "cut=1234 dpol=keep-none mpol=random:77" and back.
std::string to_text(const CutCase& cut);
std::optional<CutCase> parse_cut(std::string_view text, std::string& error);

}  // namespace hydrate::crash
