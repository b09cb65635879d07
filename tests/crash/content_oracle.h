#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tests/crash/event_journal.h"

namespace hydrate::crash {

// What a clone may legitimately show, byte by byte, given the source and the client's
// mutations (DESIGN.md §3). Each byte has a set of *versions*: the source, and every client
// WRITE / WRITE_ZEROES / TRIM that covers it. A view (a moment: a power cut, or one client
// read) narrows the set:
//   - only mutations issued before the moment can appear (anything else is foreign: I1, I5);
//   - a mutation is *forcing* when it succeeded, is not a TRIM, and was made durable before the
//     moment (for a cut: it completed before a FLUSH or FUA request was issued that completed
//     before the cut, or it was FUA itself — I4); for a read: it completed before the read was
//     issued). A version that completed before a forcing mutation of that byte was issued is
//     superseded and must not appear; the source is superseded by any forcing mutation.
// Concurrent mutations (neither completed before the other was issued) may appear in either
// order, so both stay allowed. TRIM may zero or leave the old bytes, so it never forces.
class ContentOracle {
 public:
  enum class Kind : uint8_t { write, zeroes, trim };

  struct Mutation {
    Kind kind = Kind::write;
    uint64_t offset = 0;
    uint64_t length = 0;
    uint64_t issued = 0;
    uint64_t completed = kNever;  // kNever: never completed (or failed)
    bool ok = false;
    bool fua = false;
    std::shared_ptr<const std::vector<std::byte>> data;  // writes only
    std::string label;                                   // for explanations
  };

  // A request that makes earlier completed writes durable once it completes: a FLUSH, or a FUA
  // write / zero / trim (DESIGN.md I4 gives FUA the same reach as FLUSH).
  struct Barrier {
    uint64_t issued = 0;
    uint64_t completed = kNever;
    bool ok = false;
  };

  struct View {
    uint64_t candidates_before = kNever;  // mutations issued before this may appear
    uint64_t durable_before = 0;          // ok mutations completed before this force
    uint64_t fua_before = 0;              // ok FUA mutations completed before this force
  };

  struct Mismatch {
    uint64_t offset = 0;
    std::byte actual{};
    bool superseded = false;  // the byte matches a version that must have been overwritten
    std::string explanation;
  };

  explicit ContentOracle(std::shared_ptr<const std::vector<std::byte>> source);

  void add_mutation(Mutation mutation);
  void add_barrier(Barrier barrier);

  // After a power cut at journal seq `cut`.
  View at_cut(uint64_t cut) const;
  // For a client read issued and completed at these seqs.
  View for_read(uint64_t issued, uint64_t completed) const;

  // First byte of `actual` (the contents at `offset`) that the view does not allow.
  std::optional<Mismatch> check(uint64_t offset, std::span<const std::byte> actual,
                                const View& view) const;

  const std::vector<std::byte>& source() const { return *source_; }
  const std::vector<Mutation>& mutations() const { return mutations_; }
  // True when some mutation that could be visible at `view` covers part of [offset, +length).
  bool touched(uint64_t offset, uint64_t length, const View& view) const;

 private:
  bool forcing(const Mutation& m, const View& view) const;
  std::byte value(const Mutation& m, uint64_t offset) const;
  std::string explain(uint64_t offset, std::byte actual, const std::vector<uint32_t>& covering,
                      const View& view, bool& superseded) const;

  std::shared_ptr<const std::vector<std::byte>> source_;
  std::vector<Mutation> mutations_;
  std::vector<Barrier> barriers_;
  std::vector<std::vector<uint32_t>> by_sector_;  // mutations covering each 512-byte sector
};

}  // namespace hydrate::crash
