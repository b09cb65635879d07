// Routing rule "on-demand first" (DESIGN §5) at the one queue hydrate owns in front of an NBD
// source: the router. A server that answers one request at a time, in the order they arrived
// (nbdkit --threads=1 on one connection), shows the order hydrate sent them in.
#include <gtest/gtest.h>

#include <asio/this_coro.hpp>
#include <mutex>

#include "engine/task_group.h"
#include "tests/unit/sources/source_test_support.h"

namespace hydrate::test {
namespace {

class NbdSourcePriority : public SourceTest {};

// Six background reads are submitted, then one client read. The connection takes at most
// depth - depth/4 = 3 background requests, so three wait in the router; the client's read is
// sent at once and answered fourth. Without the priority it would go out seventh, behind all
// six, and be answered last.
TEST_F(NbdSourcePriority, ClientReadOvertakesBackgroundReadsWaitingInTheRouter) {
  NbdkitServer server(dir_.path(),
                      {"--threads=1", "--filter=delay", "pattern", "size=64M", "delay-read=30ms"});
  SourceOptions options = test_options();
  options.connections = 1;
  options.depth_per_connection = 4;
  auto source = make_nbd_source(server.uri(), options);
  open_or_fail(*source);

  std::mutex mutex;
  std::vector<std::string> answered;
  std::vector<std::string> errors;
  run([&]() -> asio::awaitable<void> {
    auto reader = [&](std::string name, uint64_t offset, bool background) -> asio::awaitable<void> {
      std::vector<std::byte> buffer(64 << 10);
      IoResult r;  // not `c ? co_await a : co_await b`: GCC 12 destroys that result twice
      if (background)
        r = co_await source->read_background(offset, buffer);
      else
        r = co_await source->read(offset, buffer);
      std::lock_guard lock(mutex);
      if (!r) errors.push_back(name + ": " + r.message);
      if (r && pattern_mismatch(offset, buffer) != -1) errors.push_back(name + ": wrong data");
      answered.push_back(name);
    };
    TaskGroup group(co_await asio::this_coro::executor);
    for (int i = 0; i < 6; ++i)
      group.spawn(reader("background" + std::to_string(i), uint64_t(i) << 20, true));
    group.spawn(reader("client", 32u << 20, false));
    co_await group.wait();
  }());
  EXPECT_TRUE(errors.empty()) << errors.front();
  ASSERT_EQ(answered.size(), 7u);
  const auto client = std::find(answered.begin(), answered.end(), "client") - answered.begin();
  EXPECT_LE(client, 3) << "the client's read was answered " << client + 1 << "th of 7";
  run(source->close());
}

}  // namespace
}  // namespace hydrate::test
