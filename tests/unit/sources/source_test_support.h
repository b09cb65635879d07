#pragma once

#include <gtest/gtest.h>
#include <signal.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_future.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <future>
#include <memory>
#include <span>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "engine/io_threads.h"
#include "engine/sources/nbd_source.h"
#include "engine/sources/nbd_uri.h"
#include "engine/sources/nbdkit_process.h"
#include "engine/sources/source_options.h"
#include "tests/support/run_coroutine.h"
#include "tests/unit/engine_io/io_test_util.h"

namespace hydrate::test {

inline std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The far end of a source test: a real nbdkit serving on a Unix socket in a private
// directory (nbdkit -U DIR/nbdkit.sock -f --exit-with-parent ARGS…).
class NbdkitServer {
 public:
  NbdkitServer(const std::filesystem::path& directory, std::vector<std::string> args)
      : process_(std::move(args),
                 (std::filesystem::create_directories(directory), directory.string())) {
    start();
  }

  std::string uri() const { return process_.uri(); }
  const std::string& socket_path() const { return process_.socket_path(); }
  const std::string& log_path() const { return process_.log_path(); }
  pid_t pid() const { return process_.pid(); }

  // Starts nbdkit (again) on the same socket and waits until it accepts connections.
  void start() {
    IoResult started = process_.ensure_running();
    ASSERT_TRUE(started.ok()) << started.message;
    asio::io_context context;
    IoResult listening = run_coroutine(context, process_.wait_listening(std::chrono::seconds(20)));
    ASSERT_TRUE(listening.ok()) << listening.message;
  }

  // A crash: SIGKILL, and wait until it is gone.
  void kill_hard() { signal_and_wait(SIGKILL); }
  // SIGSTOP, returning once every thread of nbdkit has stopped (the signal is asynchronous:
  // without waiting, a request sent right after could still be served).
  void pause() {
    const pid_t pid = process_.pid();
    ::kill(pid, SIGSTOP);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!all_threads_stopped(pid)) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "nbdkit did not stop";
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  void resume() { ::kill(process_.pid(), SIGCONT); }

 private:
  static bool all_threads_stopped(pid_t pid) {
    const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
    for (const auto& task : std::filesystem::directory_iterator(tasks)) {
      // /proc/PID/task/TID/stat: "TID (comm) STATE …"; comm may hold spaces, STATE follows ')'.
      const std::string stat = read_text((task.path() / "stat").string());
      const size_t paren = stat.rfind(')');
      if (paren == std::string::npos || paren + 2 >= stat.size() || stat[paren + 2] != 'T')
        return false;
    }
    return true;
  }

  void signal_and_wait(int signal) {
    ::kill(process_.pid(), signal);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (process_.running()) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "nbdkit did not die";
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  NbdkitProcess process_;
};

// What nbdkit's pattern plugin serves: every 8-byte aligned offset holds itself, big-endian.
inline std::byte pattern_byte(uint64_t position) {
  const uint64_t word = position & ~uint64_t{7};
  const unsigned shift = 8 * (7 - static_cast<unsigned>(position & 7));
  return static_cast<std::byte>((word >> shift) & 0xff);
}

// Offset of the first byte that differs from the pattern, or -1.
inline int64_t pattern_mismatch(uint64_t offset, std::span<const std::byte> data) {
  for (size_t i = 0; i < data.size(); ++i)
    if (data[i] != pattern_byte(offset + i)) return static_cast<int64_t>(offset + i);
  return -1;
}

// Returns once `pid` has exited (a zombie counts: an unreaped child is gone for its peers).
inline void wait_until_dead(pid_t pid) {
  const std::string stat_path = "/proc/" + std::to_string(pid) + "/stat";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (;;) {
    const std::string stat = read_text(stat_path);
    const size_t paren = stat.rfind(')');
    if (stat.empty() || (paren != std::string::npos && paren + 2 < stat.size() &&
                         (stat[paren + 2] == 'Z' || stat[paren + 2] == 'X')))
      return;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "process " << pid << " did not die";
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

inline size_t count_occurrences(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// Fast enough for tests, still the real code paths: short backoff and timeouts.
inline SourceOptions test_options() {
  SourceOptions options;
  options.connect_timeout = std::chrono::seconds(10);
  options.source_timeout = std::chrono::seconds(20);
  options.backoff.initial = std::chrono::milliseconds(20);
  options.backoff.max = std::chrono::milliseconds(200);
  return options;
}

// Base fixture: a private directory, two event loops for the source's connections, and a
// test-thread io_context on which the test's own coroutines run.
class SourceTest : public ::testing::Test {
 protected:
  SourceTest() : threads_(2) { threads_.start(); }
  ~SourceTest() override {
    threads_.stop();
    threads_.join();
  }

  template <typename T>
  T run(asio::awaitable<T> awaitable) {
    return run_coroutine(context_, std::move(awaitable));
  }
  void run(asio::awaitable<void> awaitable) { run_coroutine(context_, std::move(awaitable)); }

  std::unique_ptr<NbdSource> make_nbd_source(const std::string& uri,
                                             const SourceOptions& options = test_options()) {
    NbdUri parsed;
    IoResult r = NbdUri::parse(uri, parsed);
    EXPECT_TRUE(r.ok()) << r.message;
    return std::make_unique<NbdSource>(threads_, std::move(parsed), options);
  }

  // Opens `source`, failing the test (not crashing) if that does not work.
  template <typename S>
  void open_or_fail(S& source) {
    IoResult r = run(source.open());
    ASSERT_TRUE(r.ok()) << r.message;
  }

  TempDir dir_;
  IoThreads threads_;
  asio::io_context context_;
};

}  // namespace hydrate::test
