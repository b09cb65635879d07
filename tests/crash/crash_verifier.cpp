#include "tests/crash/crash_verifier.h"

#include <algorithm>
#include <asio/io_context.hpp>

#include "engine/clone/clone_volume.h"
#include "engine/metadata_store.h"
#include "tests/crash/settle.h"
#include "tests/support/fake_source.h"
#include "tests/support/memory_block_device.h"
#include "tests/support/run_coroutine.h"
#include "tests/support/shared_block_device.h"
#include "tests/support/shared_source.h"

namespace hydrate::crash {
namespace {

constexpr uint64_t kReadChunk = 256u << 10;

bool all_zero(const std::vector<std::byte>& bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](std::byte b) { return b == std::byte{0}; });
}

std::string at(uint64_t seq) {
  return "@" + std::to_string(seq);
}

struct LoadedMetadata {
  IoResult result;
  std::unique_ptr<RegionMap> map;
  MetadataSummary summary;
};

// What `hydrate meta check` would see on these bytes.
LoadedMetadata inspect(const std::vector<std::byte>& image, const std::string& name) {
  LoadedMetadata loaded;
  test::MemoryBlockDevice device(image.size(), name);
  device.set_contents(0, image);
  asio::io_context io;
  CloneGeometry geometry;
  loaded.result =
      test::run_coroutine(io, MetadataStore::inspect(device, geometry, loaded.summary, loaded.map));
  return loaded;
}

// Describes where a mismatching byte sits, for reports.
std::string place(const RunRecord& run, uint64_t offset, const RegionMap* loaded) {
  const uint64_t region = offset / run.workload.params.region_size;
  std::string s = "region " + std::to_string(region);
  if (loaded) s += loaded->test(region) ? " (bit loaded)" : " (bit not loaded)";
  return s;
}

const char* content_check(const ContentOracle::Mismatch& m) {
  return m.superseded ? checks::kDurableLost : checks::kForeignBytes;
}

asio::awaitable<IoResult> read_all(CloneVolume& volume, std::vector<std::byte>& out) {
  for (uint64_t offset = 0; offset < out.size(); offset += kReadChunk) {
    const uint64_t length = std::min<uint64_t>(kReadChunk, out.size() - offset);
    IoResult r = co_await volume.read(offset, std::span(out.data() + offset, length), nullptr);
    if (!r) co_return r;
  }
  co_return IoResult::success();
}

}  // namespace

std::vector<Violation> verify_run(const RunRecord& run) {
  std::vector<Violation> violations;
  for (const std::string& problem : run.problems) violations.push_back({checks::kRun, problem});

  const ContentOracle& oracle = *run.oracle;
  for (const ReadRecord& read : run.reads) {
    auto mismatch =
        oracle.check(read.op.offset, read.data, oracle.for_read(read.issued, read.completed));
    if (mismatch) {
      violations.push_back({checks::kReadDuringWorkload,
                            "client read " + describe(read.op) + " " + at(read.issued) + ".." +
                                at(read.completed) +
                                " returned a byte it must not: " + mismatch->explanation});
    }
  }

  // I6: at the moment of each source discard, the durable metadata holds the region's bit and
  // the durable destination holds its data. Consecutive discards of one commit share images.
  const uint32_t rs = run.workload.params.region_size;
  uint64_t cached_at = kNever;
  LoadedMetadata metadata;
  std::vector<std::byte> destination;
  for (const SourceDiscard& discard : run.discards) {
    bool reuse = cached_at != kNever;
    for (uint64_t s = cached_at + 1; reuse && s < discard.seq; ++s) {
      Event e = run.journal->at(s);
      reuse = e.actor != Actor::destination && e.actor != Actor::metadata;
    }
    if (!reuse) {
      metadata = inspect(run.metadata->durable_image(discard.seq), "durable-metadata");
      destination = run.destination->durable_image(discard.seq);
    }
    cached_at = discard.seq;
    const std::string what = "source range " + std::to_string(discard.offset) + "+" +
                             std::to_string(discard.length) + " discarded " + at(discard.seq);
    if (!metadata.result) {
      violations.push_back(
          {checks::kDiscardBeforeCommit,
           what + " while the durable metadata does not load: " + metadata.result.message});
      continue;
    }
    for (uint64_t r = discard.offset / rs; r * rs < discard.offset + discard.length; ++r) {
      if (!metadata.map->test(r)) {
        violations.push_back(
            {checks::kDiscardBeforeCommit,
             what + ": region " + std::to_string(r) + " is not committed in the durable metadata"});
        break;
      }
    }
    auto mismatch =
        oracle.check(discard.offset, std::span(destination.data() + discard.offset, discard.length),
                     oracle.at_cut(discard.seq));
    if (mismatch) {
      violations.push_back({checks::kDiscardBeforeCommit,
                            what +
                                " but the destination's durable data there is wrong, so a "
                                "crash now loses it for good: " +
                                mismatch->explanation});
    }
  }
  return violations;
}

CutVerdict verify_cut(const RunRecord& run, const CutCase& cut, const VerifyOptions& options) {
  CutVerdict verdict;
  const CaseParams& p = run.workload.params;
  const ContentOracle& oracle = *run.oracle;
  const ContentOracle::View view = oracle.at_cut(cut.cut);
  const bool created = cut.cut >= run.metadata_created;
  auto fail = [&](const char* check, std::string detail) {
    verdict.violations.push_back({check, std::move(detail)});
  };

  std::vector<std::byte> destination = run.destination->image_after_crash(cut.cut, cut.destination);
  std::vector<std::byte> metadata = run.metadata->image_after_crash(cut.cut, cut.metadata);

  // (a) The metadata loads, or the refusal is legitimate.
  std::unique_ptr<RegionMap> loaded;
  if (all_zero(metadata)) {
    if (created) {
      fail(checks::kMetadataLoad,
           "the metadata reads all zero after a cut following its creation: the clone would "
           "silently start over");
      return verdict;
    }
  } else {
    LoadedMetadata m = inspect(metadata, "crash-metadata");
    if (!m.result) {
      if (!created && !m.result.message.empty()) {
        verdict.refused_during_create = true;
        verdict.refusal = m.result.message;
        return verdict;
      }
      fail(checks::kMetadataLoad, "the metadata is refused after the cut: " + m.result.message);
      return verdict;
    }
    loaded = std::move(m.map);
    verdict.regions_loaded = loaded->hydrated_regions();
  }

  // (b) Every region whose bit survived holds allowed data (I1-I3).
  if (loaded) {
    for (uint64_t r = loaded->find_first_set(0); r < loaded->region_count();
         r = loaded->find_first_set(r + 1)) {
      ByteRange range = loaded->region_range(r);
      auto mismatch = oracle.check(
          range.offset, std::span(destination.data() + range.offset, range.length), view);
      if (mismatch) {
        // A byte that is an overwritten version means a durable write was lost; anything else
        // means the bit got there without its data.
        fail(mismatch->superseded ? checks::kDurableLost : checks::kBitWithoutData,
             "region " + std::to_string(r) + "'s bit survived the cut but the destination " +
                 (mismatch->superseded ? "lost a durable write there: "
                                       : "does not hold its data: ") +
                 mismatch->explanation);
        return verdict;
      }
    }
  }

  // (c) A fresh engine on the post-crash images. Its source is the original minus what was
  // discarded before the cut (discard_source_after_commit): those bytes now read as garbage.
  std::vector<std::byte> source_after = *run.source;
  for (const SourceDiscard& d : run.discards)
    if (d.seq < cut.cut)
      std::fill_n(source_after.begin() + static_cast<ptrdiff_t>(d.offset), d.length,
                  kDiscardedSourceByte);
  test::FakeSource source(std::move(source_after), source_identity(p));
  for (const ByteRange& hole : p.holes) source.add_zero_range(hole.offset, hole.length);
  test::MemoryBlockDevice destination_device(destination.size(), "crash-destination");
  destination_device.set_contents(0, destination);
  test::MemoryBlockDevice metadata_device(metadata.size(), "crash-metadata");
  metadata_device.set_contents(0, metadata);

  CloneSettings settings;
  settings.name = "crash-reopened";
  settings.region_size = p.region_size;
  settings.fetch_window = p.fetch_window;
  settings.copy_on_read = p.copy_on_read;
  settings.discard_passdown = p.discard_passdown;
  settings.destination_zeroed = p.destination_zeroed;
  settings.commit_interval = std::chrono::hours(24);
  settings.source_timeout = std::chrono::seconds(10);
  settings.hydration.enabled = false;
  settings.hydration.batch_bytes = 256u << 10;
  settings.hydration.max_inflight_bytes = 512u << 10;
  CloneParts parts;
  parts.source = std::make_unique<test::SharedSource>(source);
  parts.open_destination = [&](uint64_t, std::unique_ptr<BlockDevice>& out) {
    out = std::make_unique<test::SharedBlockDevice>(destination_device);
    return IoResult::success();
  };
  parts.open_metadata = [&](bool, uint64_t, std::unique_ptr<BlockDevice>& out) {
    out = std::make_unique<test::SharedBlockDevice>(metadata_device);
    return IoResult::success();
  };

  asio::io_context io;
  std::shared_ptr<CloneVolume> volume;
  auto check_contents = [&](const std::vector<std::byte>& contents, const char* when) {
    auto mismatch = oracle.check(0, contents, view);
    if (!mismatch) return true;
    std::string detail = std::string("reading the reopened clone ") + when + ": " +
                         place(run, mismatch->offset, loaded.get()) + ": " + mismatch->explanation;
    if (mismatch->actual == kDiscardedSourceByte)
      detail += " (the byte matches discarded source data)";
    fail(content_check(*mismatch), detail);
    return false;
  };
  try {
    IoResult opened = test::run_coroutine(
        io, CloneVolume::open(settings, std::move(parts), io.get_executor(), volume));
    if (!opened) {
      fail(created ? checks::kMetadataLoad : checks::kReopen,
           "a fresh engine refuses the post-crash images: " + opened.message);
      return verdict;
    }
    std::vector<std::byte> first(p.size);
    IoResult r = test::run_coroutine(io, read_all(*volume, first));
    if (!r) {
      fail(checks::kReopen, "reading the reopened clone failed: " + r.message);
    } else if (check_contents(first, "right after reopening") && options.complete_hydration) {
      if (!run_until(
              io, [&] { return volume->status().state != CloneState::starting; },
              std::chrono::seconds(30))) {
        fail(checks::kReopen, "the reopened clone never connected to its source");
      } else {
        volume->resume();
        if (!run_until(
                io, [&] { return volume->completed().is_set(); }, std::chrono::seconds(30))) {
          fail(checks::kReopen, "the reopened clone did not finish hydrating within 30 s (state " +
                                    std::string(to_string(volume->status().state)) + ": " +
                                    volume->status().reason + ")");
        } else {
          std::vector<std::byte> second(p.size);
          r = test::run_coroutine(io, read_all(*volume, second));
          if (!r) {
            fail(checks::kReopen, "reading the hydrated clone failed: " + r.message);
          } else if (check_contents(second, "after hydrating it completely") && first != second) {
            auto diff = std::mismatch(first.begin(), first.end(), second.begin());
            uint64_t offset = static_cast<uint64_t>(diff.first - first.begin());
            fail(checks::kStableReads,
                 "with no client writes after the reopen, byte " + std::to_string(offset) + " (" +
                     place(run, offset, loaded.get()) + ") read " +
                     std::to_string(std::to_integer<int>(*diff.first)) + " and then " +
                     std::to_string(std::to_integer<int>(*diff.second)));
          }
        }
      }
    }
    IoResult closed = test::run_coroutine(io, volume->close());
    if (!closed && verdict.violations.empty())
      fail(checks::kReopen, "closing the reopened clone failed: " + closed.message);
    settle(io);
    volume.reset();
    settle(io);
    if (options.complete_hydration && verdict.violations.empty()) {
      LoadedMetadata after = inspect(metadata_device.contents(), "crash-metadata");
      if (!after.result || !(after.summary.flags & kMetaFlagComplete))
        fail(checks::kReopen,
             "after hydrating completely and closing, the metadata is not "
             "recorded complete: " +
                 (after.result ? std::string("complete flag missing") : after.result.message));
    }
  } catch (const std::exception& e) {
    fail(checks::kReopen, std::string("the reopened clone hung: ") + e.what());
  }
  return verdict;
}

}  // namespace hydrate::crash
