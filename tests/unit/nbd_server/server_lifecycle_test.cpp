// Listeners, limits, socket activation and graceful shutdown.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <thread>

#include "nbd-server/protocol.h"
#include "tests/unit/nbd_server/raw_client.h"
#include "tests/unit/nbd_server/test_server.h"

namespace hydrate::nbd::testing {
namespace {

using namespace proto;

std::string start_error(ServerSettings settings) {
  IoThreads threads(1);
  Server server(threads, std::move(settings));
  server.add_export(std::make_shared<MemoryExport>(make_info("x", 1 << 20)));
  try {
    server.start();
  } catch (const ServerError& e) {
    return e.what();
  }
  return "started";
}

int bound_unix_socket(const std::string& path, bool listening) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return -1;
  if (listening) ::listen(fd, 8);
  return fd;
}

TEST(Listeners, TcpOnAFreePortReportsTheRealAddress) {
  ServerSettings settings;
  settings.listen = {"tcp://127.0.0.1:0"};
  TestServer server(settings);
  server.add(make_info("disk", 1 << 20));
  server.start();
  auto addresses = server.server().bound_addresses();
  ASSERT_EQ(addresses.size(), 1u);
  ASSERT_TRUE(addresses[0].starts_with("tcp://127.0.0.1:")) << addresses[0];
  std::string port = addresses[0].substr(std::strlen("tcp://127.0.0.1:"));
  EXPECT_NE(port, "0");
  NbdHandle h;
  ASSERT_EQ(nbd_connect_tcp(h, "127.0.0.1", port.c_str()), 0) << nbd_error_text();
  EXPECT_EQ(nbd_get_size(h), 1 << 20);
  auto data = pattern(65536, 5);
  ASSERT_EQ(nbd_pwrite(h, data.data(), data.size(), 0, 0), 0);
}

TEST(Listeners, TcpIpv6Literal) {
  ServerSettings settings;
  settings.listen = {"tcp://[::1]:0"};
  TestServer server(settings);
  server.add(make_info("disk", 1 << 20));
  try {
    server.start();
  } catch (const ServerError& e) {
    GTEST_SKIP() << "no IPv6 loopback here: " << e.what();
  }
  auto addresses = server.server().bound_addresses();
  ASSERT_EQ(addresses.size(), 1u);
  ASSERT_TRUE(addresses[0].starts_with("tcp://[::1]:")) << addresses[0];
  std::string port = addresses[0].substr(std::strlen("tcp://[::1]:"));
  NbdHandle h;
  ASSERT_EQ(nbd_connect_tcp(h, "::1", port.c_str()), 0) << nbd_error_text();
  EXPECT_EQ(nbd_get_size(h), 1 << 20);
}

TEST(Listeners, PortInUseIsAClearError) {
  ServerSettings first;
  first.listen = {"tcp://127.0.0.1:0"};
  TestServer server(first);
  server.add(make_info("disk", 1 << 20));
  server.start();
  ServerSettings second;
  second.listen = {server.server().bound_addresses()[0]};
  second.socket_activation = false;
  std::string error = start_error(second);
  EXPECT_NE(error.find("cannot listen"), std::string::npos) << error;
  EXPECT_NE(error.find("in use"), std::string::npos) << error;
}

TEST(Listeners, BadSettingsAreClearErrors) {
  ServerSettings s;
  s.socket_activation = false;
  EXPECT_NE(start_error(s).find("nothing to listen on"), std::string::npos);
  s.listen = {"udp://1.2.3.4"};
  EXPECT_NE(start_error(s).find("expected tcp://"), std::string::npos);
  s.listen = {"tcp://no-such-host.invalid:10809"};
  EXPECT_NE(start_error(s).find("cannot resolve"), std::string::npos);
  s.listen = {"tcp://127.0.0.1:0"};
  s.max_connections = 0;
  EXPECT_NE(start_error(s).find("max_connections"), std::string::npos);
}

TEST(Listeners, StaleUnixSocketIsReplacedAndRemovedOnShutdown) {
  TempDir dir;
  std::string path = dir.file("stale.sock");
  int fd = bound_unix_socket(path, false);
  ASSERT_GE(fd, 0);
  ::close(fd);  // the file stays, nobody listens: a crashed server's leftover
  ServerSettings s;
  s.listen = {"unix:" + path};
  TestServer server(s);
  server.add(make_info("disk", 1 << 20));
  server.start();
  NbdHandle h;
  ASSERT_EQ(nbd_connect_unix(h, path.c_str()), 0) << nbd_error_text();
  ASSERT_EQ(nbd_shutdown(h, 0), 0);
  ASSERT_TRUE(server.shutdown());
  struct stat st;
  EXPECT_NE(::lstat(path.c_str(), &st), 0) << "socket file left behind";
}

TEST(Listeners, LiveUnixSocketOrRegularFileIsNotReplaced) {
  TempDir dir;
  std::string path = dir.file("live.sock");
  int fd = bound_unix_socket(path, true);
  ASSERT_GE(fd, 0);
  ServerSettings s;
  s.socket_activation = false;
  s.listen = {"unix:" + path};
  EXPECT_NE(start_error(s).find("another server is listening"), std::string::npos);
  ::close(fd);
  std::string file = dir.file("file");
  std::ofstream(file) << "precious";
  s.listen = {"unix:" + file};
  EXPECT_NE(start_error(s).find("not a socket"), std::string::npos);
  std::ifstream in(file);
  std::string content;
  in >> content;
  EXPECT_EQ(content, "precious");
}

TEST(Limits, MaxConnectionsRefusesTheExtraOne) {
  ServerSettings s;
  s.max_connections = 2;
  TestServer server(s);
  server.add(make_info("disk", 1 << 20));
  server.start();
  auto a = std::make_unique<NbdHandle>();
  NbdHandle b;
  ASSERT_EQ(nbd_connect_unix(*a, server.socket().c_str()), 0) << nbd_error_text();
  ASSERT_EQ(nbd_connect_unix(b, server.socket().c_str()), 0) << nbd_error_text();
  {
    RawClient extra(server.socket());
    EXPECT_TRUE(extra.closed_by_server());  // no greeting at all
  }
  EXPECT_EQ(server.server().connection_count(), 2u);
  a.reset();  // closes: a slot frees up
  ASSERT_TRUE(eventually([&] { return server.server().connection_count() == 1; }));
  NbdHandle c;
  ASSERT_EQ(nbd_connect_unix(c, server.socket().c_str()), 0) << nbd_error_text();
}

TEST(Shutdown, InFlightRequestsFinishThenExportsAreFlushed) {
  TestServer server;
  auto disk = server.add(make_info("disk", 1 << 20));
  server.start();
  std::atomic<bool> gate{false};
  disk->set_hook([&](const MemoryExport::Call& c) {
    MemoryExport::Fault f;
    if (c.op == "read") f.gate = &gate;
    return f;
  });
  disk->fill(0, pattern(4096, 8));
  NbdHandle h;
  ASSERT_EQ(nbd_connect_unix(h, server.socket().c_str()), 0) << nbd_error_text();
  std::vector<std::byte> buf(4096);
  int64_t cookie = nbd_aio_pread(h, buf.data(), buf.size(), 0, NBD_NULL_COMPLETION, 0);
  ASSERT_GT(cookie, 0);
  while (disk->started() == 0) ASSERT_GE(nbd_poll(h, 100), 0);

  auto done = std::make_shared<std::atomic<bool>>(false);
  server.server().shutdown([done] { done->store(true); });
  // New clients are turned away: the socket is gone.
  ASSERT_TRUE(eventually([&] {
    struct stat st;
    return ::lstat(server.socket().c_str(), &st) != 0;
  }));
  EXPECT_FALSE(done->load());  // the read is still held in the export
  EXPECT_EQ(disk->count("flush"), 0u);
  gate = true;
  int rc = 0;
  while ((rc = nbd_aio_command_completed(h, cookie)) == 0) {
    if (nbd_poll(h, 20000) < 0) break;
  }
  EXPECT_EQ(rc, 1) << nbd_error_text();
  EXPECT_EQ(buf, pattern(4096, 8));
  ASSERT_TRUE(eventually([&] { return done->load(); }));
  EXPECT_EQ(disk->count("flush"), 1u);
  EXPECT_EQ(server.server().connection_count(), 0u);
}

TEST(Shutdown, OptionsDuringShutdownGetErrShutdown) {
  TestServer server;
  server.add(make_info("disk", 1 << 20));
  server.start();
  RawClient c(server.socket());
  ASSERT_TRUE(c.greeting());
  ASSERT_TRUE(c.send_client_flags(kClientFlagFixedNewstyle));
  ASSERT_TRUE(eventually([&] { return server.server().connection_count() == 1; }));
  auto done = std::make_shared<std::atomic<bool>>(false);
  server.server().shutdown([done] { done->store(true); });
  ASSERT_TRUE(c.send_option(kOptGo, info_payload("disk")));
  auto r = c.read_option_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, kRepErrShutdown);
  ASSERT_TRUE(c.send_option(kOptAbort));
  r = c.read_option_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, kRepAck);
  EXPECT_TRUE(c.closed_by_server());
  EXPECT_TRUE(eventually([&] { return done->load(); }));
}

TEST(Shutdown, EveryShutdownCallerIsToldWhenItIsDone) {
  TestServer server;
  server.add(make_info("disk", 1 << 20));
  server.start();
  NbdHandle h;
  ASSERT_EQ(nbd_connect_unix(h, server.socket().c_str()), 0) << nbd_error_text();
  auto first = std::make_shared<std::atomic<bool>>(false);
  auto second = std::make_shared<std::atomic<bool>>(false);
  server.server().shutdown([first] { first->store(true); });
  server.server().shutdown([second] { second->store(true); });
  nbd_shutdown(h, 0);
  EXPECT_TRUE(eventually([&] { return first->load() && second->load(); }));
}

TEST(Shutdown, IdleServerFinishesAtOnce) {
  TestServer server;
  auto disk = server.add(make_info("disk", 1 << 20));
  server.start();
  EXPECT_TRUE(server.shutdown());
  EXPECT_EQ(disk->count("flush"), 1u);
}

// Socket activation needs the sockets at descriptor 3 and LISTEN_PID = our pid, so the server
// runs in a forked child, as systemd or `nbdinfo -- [ … ]` would start it.
pid_t serve_activated(int fd, const std::string& ready_file) {
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  ::dup2(fd, 3);
  ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
  ::setenv("LISTEN_FDS", "1", 1);
  int status = 0;
  {
    IoThreads threads(1);
    ServerSettings settings;  // no listen addresses: activated sockets only
    Server server(threads, settings);
    server.add_export(std::make_shared<MemoryExport>(make_info("act", 2 << 20)));
    threads.start();
    try {
      server.start();
      bool env_cleared = !std::getenv("LISTEN_FDS") && !std::getenv("LISTEN_PID");
      std::ofstream(ready_file) << (env_cleared ? "ok " : "env ") << server.bound_addresses()[0];
      ::pause();  // until SIGTERM from the test
    } catch (const std::exception& e) {
      std::ofstream(ready_file) << "error " << e.what();
      status = 1;
    }
  }
  ::_exit(status);
}

std::string wait_for_file(const std::string& path) {
  std::string content;
  eventually([&] {
    std::ifstream in(path);
    std::getline(in, content);
    return !content.empty();
  });
  return content;
}

TEST(SocketActivation, ListeningSocketFromTheEnvironment) {
  TempDir dir;
  std::string path = dir.file("act.sock");
  int fd = bound_unix_socket(path, true);
  ASSERT_GE(fd, 0);
  pid_t child = serve_activated(fd, dir.file("ready"));
  ::close(fd);
  std::string ready = wait_for_file(dir.file("ready"));
  EXPECT_EQ(ready, "ok unix:" + path);
  {
    NbdHandle h;
    ASSERT_EQ(nbd_connect_unix(h, path.c_str()), 0) << nbd_error_text();
    EXPECT_EQ(nbd_get_size(h), 2 << 20);
  }
  ::kill(child, SIGTERM);
  int status = 0;
  ::waitpid(child, &status, 0);
}

TEST(SocketActivation, ConnectedSocketFromTheEnvironment) {
  TempDir dir;
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  pid_t child = serve_activated(pair[1], dir.file("ready"));
  ::close(pair[1]);
  EXPECT_TRUE(wait_for_file(dir.file("ready")).starts_with("ok fd:3"));
  {
    NbdHandle h;
    ASSERT_EQ(nbd_connect_socket(h, pair[0]), 0) << nbd_error_text();
    EXPECT_EQ(nbd_get_size(h), 2 << 20);
  }
  ::kill(child, SIGTERM);
  int status = 0;
  ::waitpid(child, &status, 0);
}

TEST(SocketActivation, VariablesForAnotherProcessAreIgnored) {
  ::setenv("LISTEN_PID", "1", 1);
  ::setenv("LISTEN_FDS", "1", 1);
  ServerSettings s;
  std::string error = start_error(s);
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  EXPECT_NE(error.find("nothing to listen on"), std::string::npos) << error;
}

}  // namespace
}  // namespace hydrate::nbd::testing
