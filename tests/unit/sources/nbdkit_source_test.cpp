#include "engine/sources/nbdkit_source.h"

#include <gtest/gtest.h>
#include <signal.h>

#include "engine/sources/source_factory.h"
#include "tests/unit/sources/source_test_support.h"

namespace hydrate::test {
namespace {

class NbdkitSourceTest : public SourceTest {
 protected:
  std::unique_ptr<NbdkitSource> make(std::vector<std::string> args,
                                     SourceOptions options = test_options()) {
    return std::make_unique<NbdkitSource>(threads_, std::move(args), options);
  }
};

TEST_F(NbdkitSourceTest, ServesAPluginEndToEnd) {
  auto source = make({"pattern", "size=64M"});
  EXPECT_EQ(source->identity(), "nbdkit:pattern size=64M");
  open_or_fail(*source);
  EXPECT_EQ(source->size(), 64u << 20);
  ASSERT_NE(source->process(), nullptr);
  const std::string socket = source->process()->socket_path();
  EXPECT_TRUE(std::filesystem::exists(socket));
  // pattern allows multi-conn: several connections over the one process.
  EXPECT_EQ(source->parallelism(), 4u * test_options().depth_per_connection);
  std::vector<std::byte> buffer(3u << 20);
  IoResult r = run(source->read(12345, buffer));
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(pattern_mismatch(12345, buffer), -1);
  ExtentList extents;
  ASSERT_TRUE(run(source->block_status(0, 1 << 20, extents)).ok());
  EXPECT_FALSE(extents.empty());

  const pid_t pid = source->process()->pid();
  run(source->close());
  EXPECT_NE(::kill(pid, 0), 0) << "nbdkit still runs after close()";
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(socket).parent_path()))
      << "private directory left behind";
  EXPECT_EQ(run(source->read(0, buffer)).error, ESHUTDOWN);
}

// nbdkit dies: the source starts it again while reconnecting, and reads go on.
TEST_F(NbdkitSourceTest, RestartsNbdkitAfterItDied) {
  auto source = make({"pattern", "size=64M"});
  open_or_fail(*source);
  std::vector<std::byte> buffer(1 << 20);
  ASSERT_TRUE(run(source->read(0, buffer)).ok());
  // open() returns once the first connection is up; the others connect after it. One still
  // connecting at the kill would connect for the first time afterwards: not a reconnect.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (source->stats().connections < 4) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the connections did not all come up";
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const pid_t first = source->process()->pid();
  ASSERT_EQ(::kill(first, SIGKILL), 0);
  // SIGKILL is delivered asynchronously: until nbdkit is really gone it may still answer the
  // read below, and then nothing was restarted.
  wait_until_dead(first);
  IoResult r = run(source->read(5u << 20, buffer));
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(pattern_mismatch(5u << 20, buffer), -1);
  EXPECT_EQ(source->process()->starts(), 2u);
  EXPECT_NE(source->process()->pid(), first);
  EXPECT_GE(source->stats().reconnects, 1u);
  run(source->close());
}

TEST_F(NbdkitSourceTest, AFailingPluginFailsOpenWithNbdkitsOwnMessage) {
  auto source = make({"file", dir_.file("does-not-exist.img")});
  IoResult r = run(source->open());
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.message.find("exited with status"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("does-not-exist.img"), std::string::npos) << r.message;
  run(source->close());
}

TEST_F(NbdkitSourceTest, IdentityAndLogsMaskCredentials) {
  auto source = make({"curl", "url=https://example.com/disk.img", "user=bob", "password=hunter2",
                      "Api-Token=abc", "--filter=retry"});
  EXPECT_EQ(source->identity(),
            "nbdkit:curl url=https://example.com/disk.img user=bob password=*** Api-Token=*** "
            "--filter=retry");
}

TEST_F(NbdkitSourceTest, ArgumentsThatTakeTheListenerAreRefused) {
  for (const auto& bad :
       std::vector<std::vector<std::string>>{{"-p", "10809", "memory", "1G"},
                                             {"--port=10809", "memory", "1G"},
                                             {"-U", "/tmp/x.sock", "memory", "1G"},
                                             {"--run", "nbdinfo $uri", "memory", "1G"},
                                             {}}) {
    IoResult r = NbdkitProcess::check_args(bad);
    EXPECT_EQ(r.error, EINVAL);
    EXPECT_NE(r.message.find("nbdkit"), std::string::npos) << r.message;
    EXPECT_THROW(make_source(SourceSpec::nbdkit(bad), threads_, test_options()),
                 std::invalid_argument);
  }
  EXPECT_TRUE(NbdkitProcess::check_args({"--filter=delay", "memory", "1G", "rdelay=1"}).ok());
}

}  // namespace
}  // namespace hydrate::test
