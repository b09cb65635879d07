#include <gtest/gtest.h>

#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include "engine/task_group.h"
#include "tests/unit/sources/source_test_support.h"

namespace hydrate::test {
namespace {

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_after(d);
  co_await timer.async_wait(asio::use_awaitable);
}

class NbdSourceFaults : public SourceTest {
 protected:
  // Reads [i × 1 MiB, + 64 KiB) for i < count, all at once; returns what went wrong.
  struct Outcome {
    std::vector<std::string> errors;
    int wrong = 0;
  };
  asio::awaitable<void> read_many(NbdSource& source, int count, Outcome& out) {
    out.errors.assign(count, "");
    auto reader = [&](int i) -> asio::awaitable<void> {
      std::vector<std::byte> buffer(64 << 10);
      const uint64_t offset = static_cast<uint64_t>(i) << 20;
      IoResult r = co_await source.read(offset, buffer);
      if (!r) out.errors[i] = r.message;
      if (r && pattern_mismatch(offset, buffer) != -1) ++out.wrong;
    };
    TaskGroup group(co_await asio::this_coro::executor);
    for (int i = 0; i < count; ++i) group.spawn(reader(i));
    co_await group.wait();
  }
  void expect_all_good(const Outcome& o) {
    EXPECT_EQ(o.wrong, 0);
    for (size_t i = 0; i < o.errors.size(); ++i) EXPECT_EQ(o.errors[i], "") << "read " << i;
  }
};

// nbdkit fails 30 % of reads with EIO: every read still returns the right bytes, because each
// failed attempt is retried, and the failures are counted.
TEST_F(NbdSourceFaults, ServerReadErrorsAreRetriedAndCounted) {
  NbdkitServer server(
      dir_.path(), {"--filter=error", "pattern", "size=256M", "error=EIO", "error-pread-rate=0.3"});
  auto source = make_nbd_source(server.uri());
  open_or_fail(*source);
  Outcome outcome;
  run(read_many(*source, 200, outcome));
  expect_all_good(outcome);
  const SourceStats stats = source->stats();
  EXPECT_GT(stats.read_errors, 20u);  // ~0.3 × 200 first attempts alone
  EXPECT_EQ(stats.reads, 200u);
  EXPECT_NE(stats.last_error.find("Input/output error"), std::string::npos) << stats.last_error;
  run(source->close());
}

// Errors the server means (EPERM, EINVAL…) are not retried: asking again cannot help.
TEST_F(NbdSourceFaults, PermanentServerErrorsFailAtOnce) {
  NbdkitServer server(
      dir_.path(), {"--filter=error", "pattern", "size=16M", "error=EPERM", "error-pread-rate=1"});
  auto source = make_nbd_source(server.uri());
  open_or_fail(*source);
  std::vector<std::byte> buffer(4096);
  IoResult r = run(source->read(8192, buffer));
  EXPECT_EQ(r.error, EPERM);
  EXPECT_NE(r.message.find("read at offset 8192"), std::string::npos) << r.message;
  EXPECT_EQ(source->stats().read_errors, 1u);
  run(source->close());
}

// nbdkit crashes while reads are in flight and comes back on the same socket: the reads that
// were in flight and the ones made meanwhile all succeed once a connection is back.
TEST_F(NbdSourceFaults, ServerKilledMidRunAndRestarted) {
  NbdkitServer server(dir_.path(), {"--filter=delay", "pattern", "size=128M", "delay-read=100ms"});
  auto source = make_nbd_source(server.uri());
  open_or_fail(*source);
  Outcome during;
  Outcome after;
  run([&]() -> asio::awaitable<void> {
    TaskGroup group(co_await asio::this_coro::executor);
    group.spawn(read_many(*source, 48, during));
    co_await sleep_for(std::chrono::milliseconds(30));  // the reads are at the server now
    server.kill_hard();
    co_await sleep_for(std::chrono::milliseconds(400));
    server.start();
    co_await group.wait();
    co_await read_many(*source, 16, after);
  }());
  expect_all_good(during);
  expect_all_good(after);
  EXPECT_GE(source->stats().reconnects, 1u);
  run(source->close());
}

// Down for longer than the source timeout: reads fail with EIO after about that long — no
// hang, no wrong data — and work again once the server is back.
TEST_F(NbdSourceFaults, SourceDownLongerThanTheTimeoutFailsWithEio) {
  NbdkitServer server(dir_.path(), {"pattern", "size=16M"});
  SourceOptions options = test_options();
  options.source_timeout = std::chrono::milliseconds(800);
  auto source = make_nbd_source(server.uri(), options);
  open_or_fail(*source);
  server.kill_hard();
  std::vector<std::byte> buffer(4096, std::byte{0x5a});
  const auto start = std::chrono::steady_clock::now();
  IoResult r = run(source->read(4096, buffer));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.error, EIO);
  EXPECT_NE(r.message.find("source timeout of 800 ms"), std::string::npos) << r.message;
  EXPECT_GE(elapsed, std::chrono::milliseconds(700));
  EXPECT_LT(elapsed, std::chrono::seconds(10));  // bounded, i.e. no hang
  EXPECT_FALSE(source->stats().connected);

  server.start();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!source->stats().connected) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "never reconnected";
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(run(source->read(4096, buffer)).ok());
  EXPECT_EQ(pattern_mismatch(4096, buffer), -1);
  run(source->close());
}

// A server that stops answering (SIGSTOP) holds the reads; at their deadline they fail with
// EIO and the stuck connection is dropped; after SIGCONT the source recovers.
TEST_F(NbdSourceFaults, HungServerTimesOutAndRecovers) {
  NbdkitServer server(dir_.path(), {"pattern", "size=16M"});
  SourceOptions options = test_options();
  options.source_timeout = std::chrono::milliseconds(600);
  options.connections = 1;
  auto source = make_nbd_source(server.uri(), options);
  open_or_fail(*source);
  server.pause();
  std::vector<std::byte> buffer(4096);
  IoResult r = run(source->read(0, buffer));
  EXPECT_EQ(r.error, EIO);
  EXPECT_NE(r.message.find("no reply"), std::string::npos) << r.message;
  server.resume();
  IoResult again = IoResult::failure(EIO, "not tried");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!again.ok() && std::chrono::steady_clock::now() < deadline)
    again = run(source->read(0, buffer));
  ASSERT_TRUE(again.ok()) << again.message;
  EXPECT_EQ(pattern_mismatch(0, buffer), -1);
  run(source->close());
}

// After a reconnect the server has another size: this is another source. Refused, and the
// message names both sizes.
TEST_F(NbdSourceFaults, SizeChangeAfterReconnectIsRefused) {
  auto server =
      std::make_unique<NbdkitServer>(dir_.path(), std::vector<std::string>{"pattern", "size=64M"});
  auto source = make_nbd_source(server->uri());
  open_or_fail(*source);
  server->kill_hard();
  server.reset();
  NbdkitServer other(dir_.path(), {"pattern", "size=32M"});
  std::vector<std::byte> buffer(4096);
  IoResult r = run(source->read(0, buffer));
  EXPECT_EQ(r.error, EIO);
  EXPECT_NE(r.message.find("67108864"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("33554432"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("not the same source"), std::string::npos) << r.message;
  // And it stays refused.
  EXPECT_EQ(run(source->read(0, buffer)).error, EIO);
  run(source->close());
}

TEST_F(NbdSourceFaults, CloseFailsWaitingReadsWithEshutdown) {
  NbdkitServer server(dir_.path(), {"pattern", "size=16M"});
  auto source = make_nbd_source(server.uri());
  open_or_fail(*source);
  server.kill_hard();
  Outcome outcome;
  run([&]() -> asio::awaitable<void> {
    TaskGroup group(co_await asio::this_coro::executor);
    group.spawn(read_many(*source, 4, outcome));
    co_await sleep_for(std::chrono::milliseconds(100));
    co_await source->close();
    co_await group.wait();
  }());
  for (const auto& e : outcome.errors) EXPECT_NE(e.find("closed"), std::string::npos) << e;
}

}  // namespace
}  // namespace hydrate::test
