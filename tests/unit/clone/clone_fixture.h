#pragma once

#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <memory>
#include <random>
#include <vector>

#include "engine/clone/clone_volume.h"
#include "engine/metadata_store.h"
#include "tests/support/fake_source.h"
#include "tests/support/memory_block_device.h"
#include "tests/support/run_coroutine.h"
#include "tests/support/shared_block_device.h"
#include "tests/support/shared_source.h"

namespace hydrate::test {

inline std::vector<std::byte> random_bytes(size_t n, uint32_t seed) {
  std::vector<std::byte> v(n);
  std::mt19937 rng(seed);
  for (auto& b : v) b = static_cast<std::byte>(rng() & 0xff);
  return v;
}

// A clone over a FakeSource with memory destination and metadata, all on one io_context run
// from the test thread. Hydration is off and commits are manual unless a test turns them on.
class CloneFixture : public ::testing::Test {
 protected:
  static constexpr uint64_t kSize = 4u << 20;
  static constexpr uint32_t kRegion = 64u << 10;

  CloneFixture()
      : source(random_bytes(kSize, 42)), destination(kSize, "dest"), metadata(1u << 20, "meta") {
    settings.name = "c";
    settings.region_size = kRegion;
    settings.fetch_window = 128u << 10;
    settings.commit_interval = std::chrono::hours(1);
    settings.source_timeout = std::chrono::seconds(5);
    settings.hydration.enabled = false;
  }

  ~CloneFixture() override {
    if (volume) close();
  }

  CloneParts parts() {
    CloneParts p;
    p.source = std::make_unique<SharedSource>(source);
    p.open_destination = [this](uint64_t, std::unique_ptr<BlockDevice>& out) {
      out = std::make_unique<SharedBlockDevice>(destination);
      return IoResult::success();
    };
    p.open_metadata = [this](bool, uint64_t, std::unique_ptr<BlockDevice>& out) {
      out = std::make_unique<SharedBlockDevice>(metadata);
      return IoResult::success();
    };
    return p;
  }

  IoResult open() {
    return run_coroutine(io, CloneVolume::open(settings, parts(), io.get_executor(), volume));
  }
  void open_ok() {
    IoResult r = open();
    ASSERT_TRUE(r.ok()) << r.message;
  }
  IoResult close() {
    IoResult r = run_coroutine(io, volume->close());
    volume.reset();
    // Let posted wake-ups and detached coroutines finish against live objects.
    io.poll();
    return r;
  }

  std::vector<std::byte> read(uint64_t offset, size_t length, IoResult* result = nullptr) {
    std::vector<std::byte> out(length);
    IoResult r = run_coroutine(io, volume->read(offset, out, nullptr));
    if (result) *result = r;
    else EXPECT_TRUE(r.ok()) << r.message;
    return out;
  }
  IoResult write(uint64_t offset, const std::vector<std::byte>& data, bool fua = false) {
    return run_coroutine(io, volume->write(offset, data, WriteFlags{fua}));
  }
  IoResult flush() { return run_coroutine(io, volume->flush()); }
  // Runs the context until `predicate` holds (or fails the test after `limit`).
  template <typename P>
  void run_until(P predicate, std::chrono::seconds limit = std::chrono::seconds(30)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!predicate()) {
      if (io.stopped()) io.restart();
      io.run_one_for(std::chrono::milliseconds(50));
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "condition not reached in time";
    }
  }
  // Lets posted work (write-backs, wake-ups) run.
  void settle() {
    for (int i = 0; i < 50; ++i) io.poll();
  }

  std::vector<std::byte> source_bytes(uint64_t offset, size_t length) const {
    return {source.data().begin() + offset, source.data().begin() + offset + length};
  }
  std::vector<std::byte> dest_bytes(uint64_t offset, size_t length) const {
    auto all = destination.contents();
    return {all.begin() + offset, all.begin() + offset + length};
  }
  // Regions of the source's reads, in the order they were issued.
  std::vector<uint64_t> read_regions() const {
    std::vector<uint64_t> out;
    for (const ByteRange& r : source.read_log()) out.push_back(r.offset / kRegion);
    return out;
  }
  // Regions recorded as hydrated in the metadata on "disk".
  std::unique_ptr<RegionMap> committed_map() {
    CloneGeometry g;
    MetadataSummary s;
    std::unique_ptr<RegionMap> map;
    IoResult r = run_coroutine(io, MetadataStore::inspect(metadata, g, s, map));
    EXPECT_TRUE(r.ok()) << r.message;
    return map;
  }

  asio::io_context io;
  FakeSource source;
  MemoryBlockDevice destination;
  MemoryBlockDevice metadata;
  CloneSettings settings;
  std::shared_ptr<CloneVolume> volume;
};

}  // namespace hydrate::test
