#include <gtest/gtest.h>

#include <asio/this_coro.hpp>
#include <regex>
#include <set>

#include "engine/task_group.h"
#include "tests/unit/sources/source_test_support.h"

namespace hydrate::test {
namespace {

class NbdSourceMultiConn : public SourceTest {
 protected:
  // Connection numbers nbdkit's log filter saw serving reads ("connection=N Read …").
  std::set<int> connections_that_read(const std::string& log) {
    std::set<int> seen;
    const std::regex read_line(R"(connection=(\d+) Read )");
    for (auto it = std::sregex_iterator(log.begin(), log.end(), read_line);
         it != std::sregex_iterator(); ++it)
      seen.insert(std::stoi((*it)[1]));
    return seen;
  }

  // Keeps 64 reads in flight until every planned connection is up, then reads once more with
  // as many in flight, so each connection gets some.
  void read_in_parallel(NbdSource& source, unsigned expect_connections) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (source.stats().connections < expect_connections) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "connections never came up";
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::vector<std::string> errors(64);
    run([&]() -> asio::awaitable<void> {
      auto reader = [&](int i) -> asio::awaitable<void> {
        std::vector<std::byte> buffer(256 << 10);
        const uint64_t offset = static_cast<uint64_t>(i) << 20;
        IoResult r = co_await source.read(offset, buffer);
        if (!r) errors[i] = r.message;
        if (r && pattern_mismatch(offset, buffer) != -1) errors[i] = "wrong data";
      };
      TaskGroup group(co_await asio::this_coro::executor);
      for (int i = 0; i < 64; ++i) group.spawn(reader(i));
      co_await group.wait();
    }());
    for (const auto& e : errors) EXPECT_EQ(e, "");
  }
};

TEST_F(NbdSourceMultiConn, UsesSeveralConnectionsWhenTheServerAllowsIt) {
  const std::string log = dir_.file("nbdkit-requests.log");
  // The delay keeps requests in flight long enough to need every connection.
  NbdkitServer server(dir_.path() / "srv", {"--filter=log", "--filter=delay", "pattern",
                                            "size=128M", "logfile=" + log, "rdelay=5ms"});
  SourceOptions options = test_options();
  options.connections = 3;
  auto source = make_nbd_source(server.uri(), options);
  open_or_fail(*source);
  EXPECT_EQ(source->parallelism(), 3u * options.depth_per_connection);
  read_in_parallel(*source, 3);
  EXPECT_EQ(source->stats().connections, 3u);
  const std::string text = read_text(log);
  EXPECT_EQ(count_occurrences(text, " Connect "), 3u) << text.substr(0, 2000);
  EXPECT_EQ(connections_that_read(text).size(), 3u);
  run(source->close());
}

TEST_F(NbdSourceMultiConn, UsesOneConnectionWithoutMultiConn) {
  const std::string log = dir_.file("nbdkit-requests.log");
  NbdkitServer server(dir_.path() / "srv",
                      {"--filter=log", "--filter=multi-conn", "pattern", "size=128M",
                       "logfile=" + log, "multi-conn-mode=disable"});
  SourceOptions options = test_options();
  options.connections = 4;
  auto source = make_nbd_source(server.uri(), options);
  open_or_fail(*source);
  EXPECT_EQ(source->parallelism(), options.depth_per_connection);
  read_in_parallel(*source, 1);
  // Give a wrongly started extra connection the time to show up in the log.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(source->stats().connections, 1u);
  const std::string text = read_text(log);
  EXPECT_EQ(count_occurrences(text, " Connect "), 1u) << text.substr(0, 2000);
  run(source->close());
}

}  // namespace
}  // namespace hydrate::test
