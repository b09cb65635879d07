#include <gtest/gtest.h>

#include <asio/this_coro.hpp>

#include "engine/task_group.h"
#include "tests/unit/sources/source_test_support.h"

namespace hydrate::test {
namespace {

class NbdSourceLatency : public SourceTest {};

// A functional check that requests really are concurrent, not a benchmark: with 20 ms added
// to every read, 64 reads done one at a time take 64 × 20 ms. Issued together they finish in
// a few round trips; the bound of 16 round trips leaves a huge margin for a loaded machine
// while still failing if reads were serialised.
TEST_F(NbdSourceLatency, SixtyFourReadsTakeFewRoundTripsNotSixtyFour) {
  NbdkitServer server(dir_.path(), {"--filter=delay", "pattern", "size=256M", "delay-read=20ms"});
  auto source = make_nbd_source(server.uri());
  open_or_fail(*source);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (source->stats().connections < 4) {  // the background connections
    ASSERT_LT(std::chrono::steady_clock::now(), deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::vector<std::string> errors(64);
  const auto start = std::chrono::steady_clock::now();
  run([&]() -> asio::awaitable<void> {
    auto reader = [&](int i) -> asio::awaitable<void> {
      std::vector<std::byte> buffer(64 << 10);
      const uint64_t offset = static_cast<uint64_t>(i) << 22;
      IoResult r = co_await source->read(offset, buffer);
      if (!r) errors[i] = r.message;
      if (r && pattern_mismatch(offset, buffer) != -1) errors[i] = "wrong data";
    };
    TaskGroup group(co_await asio::this_coro::executor);
    for (int i = 0; i < 64; ++i) group.spawn(reader(i));
    co_await group.wait();
  }());
  const auto elapsed = std::chrono::steady_clock::now() - start;
  for (const auto& e : errors) EXPECT_EQ(e, "");
  EXPECT_LT(elapsed, 16 * std::chrono::milliseconds(20))
      << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count() << " ms";
  run(source->close());
}

}  // namespace
}  // namespace hydrate::test
