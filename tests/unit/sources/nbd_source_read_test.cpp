#include <gtest/gtest.h>

#include <asio/co_spawn.hpp>
#include <asio/use_awaitable.hpp>
#include <cstdlib>
#include <random>

#include "engine/task_group.h"
#include "tests/unit/sources/source_test_support.h"

namespace hydrate::test {
namespace {

class NbdSourceRead : public SourceTest {};

TEST_F(NbdSourceRead, ReadsThePatternAtAnyOffset) {
  NbdkitServer server(dir_.path(), {"pattern", "size=64M"});
  auto source = make_nbd_source(server.uri());
  open_or_fail(*source);
  EXPECT_EQ(source->size(), 64u << 20);

  struct Case {
    uint64_t offset;
    size_t length;
  };
  for (Case c : {Case{0, 4096}, Case{1, 7}, Case{4093, 65536 + 5}, Case{(64u << 20) - 3, 3},
                 Case{12345678, 1 << 20}}) {
    std::vector<std::byte> buffer(c.length);
    IoResult r = run(source->read(c.offset, buffer));
    ASSERT_TRUE(r.ok()) << r.message;
    EXPECT_EQ(pattern_mismatch(c.offset, buffer), -1) << "offset " << c.offset;
  }
  EXPECT_EQ(source->stats().reads, 5u);
  EXPECT_EQ(source->stats().bytes_read, 4096u + 7 + 65541 + 3 + (1 << 20));
  run(source->close());
}

TEST_F(NbdSourceRead, ReadsAFileByteForByte) {
  const std::string image = dir_.file("image.raw");
  auto data = random_bytes(8u << 20, 7);
  {
    std::ofstream out(image, std::ios::binary);
    out.write(reinterpret_cast<const char*>(data.data()),
              static_cast<std::streamsize>(data.size()));
  }
  NbdkitServer server(dir_.path() / "srv", {"file", image});
  auto source = make_nbd_source(server.uri());
  open_or_fail(*source);
  std::vector<std::byte> buffer(data.size());
  IoResult r = run(source->read(0, buffer));
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_TRUE(buffer == data);
  run(source->close());
}

// sparse-random's content is defined only by nbdkit; nbdcopy (libnbd's copier, a real peer)
// writes the ground truth to a file.
TEST_F(NbdSourceRead, ReadsSparseRandomLikeNbdcopy) {
  const std::string truth = dir_.file("truth.raw");
  const std::string command =
      "/usr/bin/timeout 60 /usr/bin/nbdcopy -- [ nbdkit sparse-random 32M "
      "seed=42 percent=30 runlength=262144 ] " +
      truth;
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  std::vector<std::byte> expected(32u << 20);
  {
    std::ifstream in(truth, std::ios::binary);
    in.read(reinterpret_cast<char*>(expected.data()),
            static_cast<std::streamsize>(expected.size()));
    ASSERT_EQ(in.gcount(), static_cast<std::streamsize>(expected.size()));
  }
  NbdkitServer server(dir_.path(),
                      {"sparse-random", "32M", "seed=42", "percent=30", "runlength=262144"});
  auto source = make_nbd_source(server.uri());
  open_or_fail(*source);
  std::vector<std::byte> buffer(expected.size());
  IoResult r = run(source->read(0, buffer));
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_TRUE(buffer == expected);
  EXPECT_FALSE(all_zero(buffer));
  run(source->close());
}

// Reads above the server's limit are split: with nbdkit advertising a 1 MiB maximum, a 5.5 MiB
// read becomes 6 commands, each within the limit (the server would refuse bigger ones).
TEST_F(NbdSourceRead, SplitsReadsAtTheServersMaximum) {
  NbdkitServer server(dir_.path(), {"--filter=blocksize-policy", "pattern", "size=64M",
                                    "blocksize-maximum=1M", "blocksize-error-policy=error"});
  auto source = make_nbd_source(server.uri());
  open_or_fail(*source);
  std::vector<std::byte> buffer((5u << 20) + (1u << 19));
  IoResult r = run(source->read(4096, buffer));
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(pattern_mismatch(4096, buffer), -1);
  EXPECT_EQ(source->stats().reads, 6u);
  run(source->close());
}

// Without an advertised maximum the limit is the protocol's 32 MiB: 80 MiB = 3 commands.
TEST_F(NbdSourceRead, SplitsReadsAt32MiBByDefault) {
  NbdkitServer server(dir_.path(), {"pattern", "size=128M"});
  auto source = make_nbd_source(server.uri());
  open_or_fail(*source);
  std::vector<std::byte> buffer(80u << 20);
  IoResult r = run(source->read(8, buffer));
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(pattern_mismatch(8, buffer), -1);
  EXPECT_EQ(source->stats().reads, 3u);
  run(source->close());
}

// Hundreds of coroutines read at once, from the test's own thread, while the connections live
// on the IoThreads loops: every one gets exactly its bytes.
TEST_F(NbdSourceRead, ManyConcurrentReadsAllCorrect) {
  NbdkitServer server(dir_.path(), {"pattern", "size=256M"});
  auto source = make_nbd_source(server.uri());
  open_or_fail(*source);
  constexpr int kReaders = 400;
  std::vector<int64_t> mismatch(kReaders, -2);
  std::vector<std::string> errors(kReaders);
  run([&]() -> asio::awaitable<void> {
    // The closure outlives every coroutine it starts (they reach `source` through it).
    auto reader = [&](int i) -> asio::awaitable<void> {
      std::mt19937_64 rng(i);
      const uint64_t length = 1 + rng() % (256 << 10);
      const uint64_t offset = rng() % ((256u << 20) - length);
      std::vector<std::byte> buffer(length);
      IoResult r = co_await source->read(offset, buffer);
      if (!r) {
        errors[i] = r.message;
        co_return;
      }
      mismatch[i] = pattern_mismatch(offset, buffer);
    };
    TaskGroup group(co_await asio::this_coro::executor);
    for (int i = 0; i < kReaders; ++i) group.spawn(reader(i));
    co_await group.wait();
  }());
  for (int i = 0; i < kReaders; ++i) {
    EXPECT_EQ(errors[i], "") << "reader " << i;
    EXPECT_EQ(mismatch[i], -1) << "reader " << i;
  }
  EXPECT_EQ(source->stats().reads, static_cast<uint64_t>(kReaders));
  run(source->close());
}

TEST_F(NbdSourceRead, RefusesRangesBeyondTheEnd) {
  NbdkitServer server(dir_.path(), {"pattern", "size=1M"});
  auto source = make_nbd_source(server.uri());
  open_or_fail(*source);
  std::vector<std::byte> buffer(4096);
  IoResult r = run(source->read((1u << 20) - 100, buffer));
  EXPECT_EQ(r.error, EINVAL);
  EXPECT_NE(r.message.find("beyond its end"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find(server.socket_path()), std::string::npos) << r.message;
  ExtentList extents;
  EXPECT_EQ(run(source->block_status(2u << 20, 1, extents)).error, EINVAL);
  run(source->close());
}

TEST_F(NbdSourceRead, CallsBeforeOpenAndAfterCloseFail) {
  NbdkitServer server(dir_.path(), {"pattern", "size=1M"});
  auto source = make_nbd_source(server.uri());
  std::vector<std::byte> buffer(512);
  EXPECT_EQ(run(source->read(0, buffer)).error, EINVAL);
  open_or_fail(*source);
  EXPECT_TRUE(run(source->read(0, buffer)).ok());
  run(source->close());
  IoResult r = run(source->read(0, buffer));
  EXPECT_EQ(r.error, ESHUTDOWN);
  EXPECT_EQ(run(source->open()).error, ESHUTDOWN);
  EXPECT_FALSE(source->stats().connected);
}

TEST_F(NbdSourceRead, OpenFailsAfterTheConnectTimeoutNamingTheSource) {
  SourceOptions options = test_options();
  options.connect_timeout = std::chrono::milliseconds(300);
  const std::string uri = "nbd+unix:///?socket=" + dir_.file("nobody-listens.sock");
  auto source = make_nbd_source(uri, options);
  const auto start = std::chrono::steady_clock::now();
  IoResult r = run(source->open());
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.error, ETIMEDOUT);
  EXPECT_NE(r.message.find("nobody-listens.sock"), std::string::npos) << r.message;
  EXPECT_GE(elapsed, std::chrono::milliseconds(300));
  run(source->close());
}

TEST_F(NbdSourceRead, OpenFailsForAMissingExport) {
  SourceOptions options = test_options();
  options.connect_timeout = std::chrono::milliseconds(500);
  // nbdkit serves any export name unless told otherwise; the exportname filter is strict.
  NbdkitServer strict(dir_.path() / "strict", {"--filter=exportname", "pattern", "size=1M",
                                               "exportname=good", "exportname-strict=true"});
  auto source = make_nbd_source("nbd+unix:///bad?socket=" + strict.socket_path(), options);
  IoResult r = run(source->open());
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.message.find("/bad?socket="), std::string::npos) << r.message;
  run(source->close());
  auto good = make_nbd_source("nbd+unix:///good?socket=" + strict.socket_path(), options);
  open_or_fail(*good);
  run(good->close());
}

}  // namespace
}  // namespace hydrate::test
