#include "tests/crash/workload_runner.h"

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include "engine/clone/clone_volume.h"
#include "engine/metadata_store.h"
#include "tests/crash/hop_latency_source.h"
#include "tests/crash/scheduler_hops.h"
#include "tests/crash/seeded_random.h"
#include "tests/crash/settle.h"
#include "tests/support/fake_source.h"
#include "tests/support/memory_block_device.h"
#include "tests/support/run_coroutine.h"
#include "tests/support/shared_block_device.h"
#include "tests/support/shared_source.h"

namespace hydrate::crash {
namespace {

Action action_of(OpKind kind) {
  switch (kind) {
    case OpKind::read:
      return Action::read;
    case OpKind::write:
      return Action::write;
    case OpKind::zero:
      return Action::zero;
    case OpKind::trim:
      return Action::trim;
    case OpKind::flush:
      return Action::flush;
    case OpKind::cache:
      return Action::cache;
  }
  return Action::read;
}

std::string label(const ClientOp& op, uint64_t issued, uint64_t completed) {
  return describe(op) + " @" + std::to_string(issued) + ".." +
         (completed == kNever ? std::string("never") : std::to_string(completed));
}

// One connection: its requests one after another, each stamped in the journal when issued and
// when answered, and handed to the oracle.
asio::awaitable<void> run_connection(CloneVolume& volume, RunRecord& run,
                                     std::vector<ClientOp> ops) {
  EventJournal& journal = *run.journal;
  for (const ClientOp& op : ops) {
    co_await scheduler_hops(op.pause);
    Event event{
        0,         Actor::client, op.connection, action_of(op.kind), Phase::issue, op.offset,
        op.length, op.fua,        true};
    std::shared_ptr<const std::vector<std::byte>> payload;
    if (op.kind == OpKind::write)
      payload =
          std::make_shared<const std::vector<std::byte>>(write_payload(op.data_seed, op.length));
    std::vector<std::byte> buffer;
    const uint64_t issued = journal.record(event);
    IoResult result;
    switch (op.kind) {
      case OpKind::read:
        buffer.resize(op.length);
        result = co_await volume.read(op.offset, buffer, nullptr);
        break;
      case OpKind::write:
        result = co_await volume.write(op.offset, *payload, WriteFlags{op.fua});
        break;
      case OpKind::zero:
        result = co_await volume.zero(op.offset, op.length,
                                      ZeroFlags{op.fua, !op.no_hole, op.fast_zero});
        break;
      case OpKind::trim:
        result = co_await volume.trim(op.offset, op.length, WriteFlags{op.fua});
        break;
      case OpKind::flush:
        result = co_await volume.flush();
        break;
      case OpKind::cache:
        result = co_await volume.cache(op.offset, op.length);
        break;
    }
    event.phase = Phase::complete;
    event.ok = result.ok();
    const uint64_t completed = journal.record(event);

    const bool expected_failure =
        op.kind == OpKind::zero && op.fast_zero && result.error == ENOTSUP;
    if (!result && !expected_failure)
      run.problems.push_back("client request " + label(op, issued, completed) +
                             " failed without any fault injected: " + result.message);
    switch (op.kind) {
      case OpKind::read:
        if (result) run.reads.push_back({op, issued, completed, std::move(buffer)});
        break;
      case OpKind::write:
      case OpKind::zero:
      case OpKind::trim: {
        ContentOracle::Mutation m;
        m.kind = op.kind == OpKind::write  ? ContentOracle::Kind::write
                 : op.kind == OpKind::zero ? ContentOracle::Kind::zeroes
                                           : ContentOracle::Kind::trim;
        m.offset = op.offset;
        m.length = op.length;
        m.issued = issued;
        m.completed = completed;
        m.ok = result.ok();
        m.fua = op.fua;
        m.data = payload;
        m.label = label(op, issued, completed);
        run.oracle->add_mutation(std::move(m));
        if (op.fua) run.oracle->add_barrier({issued, completed, result.ok()});
        break;
      }
      case OpKind::flush:
        run.oracle->add_barrier({issued, completed, result.ok()});
        break;
      case OpKind::cache:
        break;
    }
  }
}

}  // namespace

std::string source_identity(const CaseParams& params) {
  std::string identity = "crash:source/";
  for (size_t i = 0; identity.size() < params.identity_length; ++i)
    identity += static_cast<char>('a' + (params.seed + i) % 26);
  identity.resize(params.identity_length);
  return identity;
}

std::vector<std::byte> source_contents(const CaseParams& params) {
  std::vector<std::byte> data = write_payload(mix_seed(params.seed, 1), params.size);
  for (const ByteRange& hole : params.holes)
    std::fill(data.begin() + static_cast<ptrdiff_t>(hole.offset),
              data.begin() + static_cast<ptrdiff_t>(hole.end()), std::byte{0});
  return data;
}

RunRecord run_workload(const Workload& workload) {
  const CaseParams& p = workload.params;
  RunRecord run;
  run.workload = workload;
  run.journal = std::make_unique<EventJournal>();
  EventJournal& journal = *run.journal;

  test::FakeSource fake(source_contents(p), source_identity(p));
  for (const ByteRange& hole : p.holes) fake.add_zero_range(hole.offset, hole.length);
  fake.set_can_discard(p.discard_source);
  fake.on_discard([&](uint64_t offset, uint64_t length) {
    uint64_t seq = journal.record(
        Event{0, Actor::source, 0, Action::source_discard, Phase::issue, offset, length});
    run.discards.push_back({seq, offset, length});
  });
  run.source = std::make_shared<const std::vector<std::byte>>(fake.data());
  run.oracle = std::make_unique<ContentOracle>(run.source);

  const CloneGeometry geometry{p.size, p.size, p.region_size, source_identity(p)};
  std::vector<std::byte> destination_start =
      p.destination_zeroed ? std::vector<std::byte>(p.size)
                           : write_payload(mix_seed(p.seed, 2), p.size);  // stale junk
  run.destination = std::make_unique<VolatileCacheDevice>(
      std::move(destination_start), journal,
      VolatileCacheDevice::Options{"crash-destination", Actor::destination, p.device_latency,
                                   mix_seed(p.seed, 3)});
  run.metadata = std::make_unique<VolatileCacheDevice>(
      std::vector<std::byte>(MetadataStore::required_size(geometry)), journal,
      VolatileCacheDevice::Options{"crash-metadata", Actor::metadata, p.device_latency,
                                   mix_seed(p.seed, 4)});
  HopLatencySource source(fake, p.source_latency, mix_seed(p.seed, 5));

  CloneSettings settings;
  settings.name = "crash";
  settings.region_size = p.region_size;
  settings.fetch_window = p.fetch_window;
  settings.copy_on_read = p.copy_on_read;
  settings.discard_passdown = p.discard_passdown;
  settings.destination_zeroed = p.destination_zeroed;
  settings.discard_source_after_commit = p.discard_source;
  settings.commit_interval = std::chrono::hours(24);  // commits come from requests: deterministic
  settings.source_timeout = std::chrono::seconds(10);
  settings.hydration.enabled = p.hydration;
  settings.hydration.batch_bytes = p.batch_bytes;
  // A window pinned to two batches: the adaptive window reacts to wall-clock latency, which
  // would make runs irreproducible.
  settings.hydration.max_inflight_bytes = 2 * p.batch_bytes;
  settings.unsafe_skip_destination_flush = p.skip_destination_flush;

  CloneParts parts;
  // Time stands still: decisions that read the clock (a client read a moment ago, so the
  // background walk keeps to its share) come out the same in every run.
  parts.clock = [] { return std::chrono::steady_clock::time_point(std::chrono::hours(1)); };
  parts.source = std::make_unique<test::SharedSource>(source);
  parts.open_destination = [&](uint64_t, std::unique_ptr<BlockDevice>& out) {
    out = std::make_unique<test::SharedBlockDevice>(*run.destination);
    return IoResult::success();
  };
  parts.open_metadata = [&](bool, uint64_t, std::unique_ptr<BlockDevice>& out) {
    out = std::make_unique<test::SharedBlockDevice>(*run.metadata);
    return IoResult::success();
  };

  asio::io_context io;
  std::shared_ptr<CloneVolume> volume;
  try {
    IoResult opened = test::run_coroutine(
        io, CloneVolume::open(settings, std::move(parts), io.get_executor(), volume));
    if (!opened) {
      run.problems.push_back("open failed: " + opened.message);
      run.end = journal.now();
      return run;
    }
    run.opened = journal.record(Event{0, Actor::client, 0, Action::open, Phase::complete});

    std::vector<std::vector<ClientOp>> lanes(p.connections);
    for (const ClientOp& op : workload.ops) lanes.at(op.connection).push_back(op);
    unsigned running = 0;
    for (auto& lane : lanes) {
      ++running;
      asio::co_spawn(io, run_connection(*volume, run, lane), [&](std::exception_ptr e) {
        if (e) run.problems.push_back("a client connection threw an exception");
        --running;
      });
    }
    if (!run_until(
            io, [&] { return running == 0; }, std::chrono::seconds(60)))
      run.problems.push_back("client requests did not finish within 60 s (hang)");
    if (p.wait_for_completion && p.hydration && run.problems.empty() &&
        !run_until(
            io, [&] { return volume->completed().is_set(); }, std::chrono::seconds(60)))
      run.problems.push_back("background hydration did not complete within 60 s");
    IoResult closed = test::run_coroutine(io, volume->close());
    if (!closed) run.problems.push_back("clean close failed: " + closed.message);
  } catch (const std::exception& e) {
    run.problems.push_back(std::string("run aborted: ") + e.what());
  }
  journal.record(Event{0, Actor::client, 0, Action::close, Phase::complete});
  run.end = journal.now();
  // Metadata becomes durable at a metadata flush: the first one after which it loads.
  for (const Event& e : journal.events()) {
    if (e.actor != Actor::metadata || e.action != Action::flush || e.phase != Phase::complete)
      continue;
    std::vector<std::byte> image = run.metadata->durable_image(e.seq + 1);
    test::MemoryBlockDevice device(image.size(), "durable-metadata");
    device.set_contents(0, image);
    asio::io_context check;
    CloneGeometry recorded;
    MetadataSummary summary;
    std::unique_ptr<RegionMap> map;
    if (test::run_coroutine(check, MetadataStore::inspect(device, recorded, summary, map))) {
      run.metadata_created = e.seq + 1;
      break;
    }
  }
  if (run.opened != kNever && run.metadata_created == kNever)
    run.problems.push_back("the clone opened, but its metadata never became durable and loadable");
  // Let posted wake-ups and the commit loop's exit run while the volume still exists.
  settle(io);
  volume.reset();
  settle(io);
  return run;
}

}  // namespace hydrate::crash
