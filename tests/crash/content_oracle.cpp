#include "tests/crash/content_oracle.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "tests/crash/volatile_cache_device.h"

namespace hydrate::crash {
namespace {

std::string hex(std::byte b) {
  char text[8];
  std::snprintf(text, sizeof text, "0x%02x", std::to_integer<unsigned>(b));
  return text;
}

}  // namespace

ContentOracle::ContentOracle(std::shared_ptr<const std::vector<std::byte>> source)
    : source_(std::move(source)), by_sector_((source_->size() + kSectorSize - 1) / kSectorSize) {}

void ContentOracle::add_mutation(Mutation mutation) {
  if (mutation.length == 0) return;
  const auto index = static_cast<uint32_t>(mutations_.size());
  const uint64_t first = mutation.offset / kSectorSize;
  const uint64_t last = (mutation.offset + mutation.length - 1) / kSectorSize;
  for (uint64_t s = first; s <= last && s < by_sector_.size(); ++s) by_sector_[s].push_back(index);
  mutations_.push_back(std::move(mutation));
}

void ContentOracle::add_barrier(Barrier barrier) {
  barriers_.push_back(barrier);
}

ContentOracle::View ContentOracle::at_cut(uint64_t cut) const {
  View view;
  view.candidates_before = cut;
  view.fua_before = cut;
  view.durable_before = 0;
  for (const Barrier& b : barriers_)
    if (b.ok && b.completed < cut) view.durable_before = std::max(view.durable_before, b.issued);
  return view;
}

ContentOracle::View ContentOracle::for_read(uint64_t issued, uint64_t completed) const {
  View view;
  view.candidates_before = completed;
  view.durable_before = issued;
  view.fua_before = 0;
  return view;
}

bool ContentOracle::forcing(const Mutation& m, const View& view) const {
  if (!m.ok || m.kind == Kind::trim || m.issued >= view.candidates_before) return false;
  return m.completed < view.durable_before || (m.fua && m.completed < view.fua_before);
}

std::byte ContentOracle::value(const Mutation& m, uint64_t offset) const {
  if (m.kind == Kind::write) return (*m.data)[offset - m.offset];
  return std::byte{0};
}

bool ContentOracle::touched(uint64_t offset, uint64_t length, const View& view) const {
  if (length == 0) return false;
  for (uint64_t s = offset / kSectorSize; s <= (offset + length - 1) / kSectorSize; ++s) {
    if (s >= by_sector_.size()) break;
    for (uint32_t i : by_sector_[s]) {
      const Mutation& m = mutations_[i];
      if (m.issued < view.candidates_before && m.offset < offset + length &&
          offset < m.offset + m.length)
        return true;
    }
  }
  return false;
}

std::optional<ContentOracle::Mismatch> ContentOracle::check(uint64_t offset,
                                                            std::span<const std::byte> actual,
                                                            const View& view) const {
  const std::vector<std::byte>& source = *source_;
  const uint64_t end = offset + actual.size();
  for (uint64_t s = offset / kSectorSize; s * kSectorSize < end; ++s) {
    const uint64_t lo = std::max(offset, s * kSectorSize);
    const uint64_t hi = std::min(end, (s + 1) * kSectorSize);
    const std::vector<uint32_t>& covering = by_sector_.at(s);
    if (covering.empty()) {
      if (std::memcmp(actual.data() + (lo - offset), source.data() + lo, hi - lo) == 0) continue;
    }
    for (uint64_t b = lo; b < hi; ++b) {
      const std::byte got = actual[b - offset];
      // The newest issue among forcing mutations of this byte: anything that completed before
      // it is superseded.
      uint64_t force = 0;
      bool forced = false;
      for (uint32_t i : covering) {
        const Mutation& m = mutations_[i];
        if (b < m.offset || b >= m.offset + m.length || !forcing(m, view)) continue;
        force = forced ? std::max(force, m.issued) : m.issued;
        forced = true;
      }
      bool allowed = !forced && got == source[b];
      for (size_t k = 0; !allowed && k < covering.size(); ++k) {
        const Mutation& m = mutations_[covering[k]];
        if (b < m.offset || b >= m.offset + m.length || m.issued >= view.candidates_before)
          continue;
        if (forced && m.completed < force) continue;
        allowed = value(m, b) == got;
      }
      if (allowed) continue;
      Mismatch mismatch;
      mismatch.offset = b;
      mismatch.actual = got;
      mismatch.explanation = explain(b, got, covering, view, mismatch.superseded);
      return mismatch;
    }
  }
  return std::nullopt;
}

std::string ContentOracle::explain(uint64_t b, std::byte got, const std::vector<uint32_t>& covering,
                                   const View& view, bool& superseded) const {
  std::string allowed, excluded;
  uint64_t force = 0;
  const Mutation* forcer = nullptr;
  for (uint32_t i : covering) {
    const Mutation& m = mutations_[i];
    if (b < m.offset || b >= m.offset + m.length || !forcing(m, view)) continue;
    if (!forcer || m.issued > force) {
      force = m.issued;
      forcer = &m;
    }
  }
  superseded = false;
  auto note = [&](std::string& list, const std::string& what, std::byte v) {
    if (!list.empty()) list += "; ";
    list += what + "=" + hex(v);
    if (v == got && &list == &excluded) superseded = true;
  };
  note(forcer ? excluded : allowed, "source", (*source_)[b]);
  for (uint32_t i : covering) {
    const Mutation& m = mutations_[i];
    if (b < m.offset || b >= m.offset + m.length) continue;
    if (m.issued >= view.candidates_before) continue;
    note(forcer && m.completed < force ? excluded : allowed, m.label, value(m, b));
  }
  std::string text = "byte " + std::to_string(b) + " is " + hex(got) +
                     "; allowed: " + (allowed.empty() ? "nothing" : allowed);
  if (forcer) {
    text += "; superseded by " + forcer->label + ": " + excluded;
  }
  text += superseded ? " (an overwritten version: an acknowledged write is missing)"
                     : " (bytes neither in the source nor written by the client)";
  return text;
}

}  // namespace hydrate::crash
