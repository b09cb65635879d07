// `hydrate serve`: exports files, devices and clones over NBD.
#include <getopt.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/serve_daemon.h"
#include "cli/serve_exports.h"
#include "cli/serve_pidfile.h"
#include "cli/serve_signals.h"
#include "config/command_line_export.h"
#include "config/server_config.h"
#include "engine/blocking_pool.h"
#include "engine/control/control_server.h"
#include "engine/io_threads.h"
#include "engine/log.h"
#include "nbd-server/listen_address.h"
#include "nbd-server/server.h"

namespace hydrate::cli {
namespace {

constexpr const char* kUsage =
    "usage: hydrate serve [-c FILE] [--listen URI]... [--export NAME=PATH[:ro]]... [options]\n"
    "\n"
    "Serve files, block devices and clones over NBD.\n"
    "\n"
    "  -c, --config FILE        YAML configuration (see config/hydrate.example.yaml)\n"
    "  -l, --listen URI         tcp://HOST[:PORT], tcp://[IPV6][:PORT] or unix:/PATH;\n"
    "                           repeatable, replaces the configuration's `listen`\n"
    "  -e, --export NAME=PATH[:ro]\n"
    "                           export a file or block device (read-only with :ro);\n"
    "                           repeatable, added to the configuration's exports\n"
    "  -p, --pidfile FILE       write the pid once listening; removed at exit\n"
    "      --control PATH       control socket for `hydrate status` and `hydrate ctl`\n"
    "                           (replaces the configuration's `control`)\n"
    "  -t, --threads N          event-loop threads (default: one per core)\n"
    "      --blocking-threads N threads for calls that may sleep (default 16)\n"
    "  -d, --daemonize          fork into the background once listening\n"
    "      --log-file FILE      where a daemon's logs go (default: discarded)\n"
    "  -v, --verbose            debug logs\n"
    "  -h, --help               this text\n"
    "\n"
    "Without --listen, sockets passed by socket activation (LISTEN_FDS, e.g.\n"
    "`nbdinfo -- [ hydrate serve --export d=disk.img ]`) are used instead of the\n"
    "configuration's addresses. SIGTERM or SIGINT: finish requests in flight, flush, exit 0.\n";

struct ServeOptions {
  std::string config_file;
  std::vector<std::string> listen;
  std::vector<std::string> exports;
  std::string pidfile;
  std::string log_file;
  std::string control;
  std::optional<unsigned> threads;
  std::optional<unsigned> blocking_threads;
  bool daemonize = false;
  bool verbose = false;
  bool help = false;
};

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

unsigned parse_count(const char* option, const char* text, unsigned min, unsigned max) {
  unsigned value = 0;
  const char* end = text + std::strlen(text);
  auto [stop, ec] = std::from_chars(text, end, value);
  if (ec != std::errc() || stop != end || value < min || value > max)
    throw UsageError(std::string(option) + " '" + text + "': expected a number from " +
                     std::to_string(min) + " to " + std::to_string(max));
  return value;
}

ServeOptions parse_options(int argc, char** argv) {
  enum { kBlockingThreads = 1000, kLogFile, kControl };
  static const option kOptions[] = {
      {"config", required_argument, nullptr, 'c'},
      {"listen", required_argument, nullptr, 'l'},
      {"export", required_argument, nullptr, 'e'},
      {"pidfile", required_argument, nullptr, 'p'},
      {"threads", required_argument, nullptr, 't'},
      {"blocking-threads", required_argument, nullptr, kBlockingThreads},
      {"daemonize", no_argument, nullptr, 'd'},
      {"log-file", required_argument, nullptr, kLogFile},
      {"control", required_argument, nullptr, kControl},
      {"verbose", no_argument, nullptr, 'v'},
      {"help", no_argument, nullptr, 'h'},
      {nullptr, 0, nullptr, 0},
  };
  ServeOptions o;
  optind = 1;
  opterr = 0;
  for (;;) {
    int c = ::getopt_long(argc, argv, ":c:l:e:p:t:dvh", kOptions, nullptr);
    if (c == -1) break;
    switch (c) {
      case 'c':
        o.config_file = optarg;
        break;
      case 'l':
        o.listen.push_back(optarg);
        break;
      case 'e':
        o.exports.push_back(optarg);
        break;
      case 'p':
        o.pidfile = optarg;
        break;
      case 't':
        o.threads = parse_count("--threads", optarg, 0, 256);
        break;
      case kBlockingThreads:
        o.blocking_threads = parse_count("--blocking-threads", optarg, 1, 1024);
        break;
      case 'd':
        o.daemonize = true;
        break;
      case kLogFile:
        o.log_file = optarg;
        break;
      case kControl:
        o.control = optarg;
        break;
      case 'v':
        o.verbose = true;
        break;
      case 'h':
        o.help = true;
        break;
      case ':':
        throw UsageError(std::string("option '") + argv[optind - 1] + "' needs a value");
      default:
        throw UsageError(std::string("unknown option '") + argv[optind - 1] + "'");
    }
  }
  if (optind < argc) throw UsageError(std::string("unexpected argument '") + argv[optind] + "'");
  return o;
}

// Whether systemd-style socket activation passed sockets to this very process.
bool sockets_were_passed() {
  const char* fds = std::getenv("LISTEN_FDS");
  const char* pid = std::getenv("LISTEN_PID");
  return fds && pid && std::atoi(fds) > 0 && std::atol(pid) == static_cast<long>(::getpid());
}

config::ServerConfig build_config(const ServeOptions& o) {
  config::ServerConfig c;
  if (!o.config_file.empty()) c = config::load_server_config(o.config_file);
  for (const std::string& arg : o.exports) c.exports.push_back(config::parse_export_argument(arg));
  config::validate_exports(c);
  if (!o.listen.empty()) {
    for (const std::string& uri : o.listen)
      if (nbd::ParsedListenAddress parsed = nbd::parse_listen_address(uri); !parsed)
        throw UsageError("--listen '" + uri + "': " + parsed.problem);
    c.listen = o.listen;
    c.socket_activation = false;  // explicit addresses only
  } else if (c.socket_activation && sockets_were_passed()) {
    if (!c.listen.empty())
      log::info("serve.socket_activation", {{"ignored_listen", std::to_string(c.listen.size())}});
    c.listen.clear();  // serve on the passed sockets only
  }
  if (!o.control.empty()) c.control = o.control;
  if (o.threads) c.threads = *o.threads;
  if (o.blocking_threads) c.blocking_threads = *o.blocking_threads;
  return c;
}

nbd::ServerSettings server_settings(const config::ServerConfig& c) {
  nbd::ServerSettings s;
  s.listen = c.listen;
  s.socket_activation = c.socket_activation;
  s.handshake_timeout = c.handshake_timeout;
  s.max_connections = c.max_connections;
  switch (c.tls.mode) {
    case config::TlsConfig::Mode::off:
      s.tls.mode = nbd::TlsSettings::Mode::off;
      break;
    case config::TlsConfig::Mode::on:
      s.tls.mode = nbd::TlsSettings::Mode::on;
      break;
    case config::TlsConfig::Mode::require:
      s.tls.mode = nbd::TlsSettings::Mode::require;
      break;
  }
  s.tls.certificates_dir = c.tls.certificates;
  s.tls.psk_file = c.tls.psk;
  s.tls.verify_peer = c.tls.verify_peer;
  return s;
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ",") + item;
  return out;
}

int serve(const ServeOptions& o) {
  config::ServerConfig config = build_config(o);
  log::set_level(o.verbose ? log::Level::debug : config.log_level.value_or(log::Level::info));

  // Blocked before any thread exists, so every thread inherits the mask and only the main
  // thread ever sees SIGTERM/SIGINT (through a signalfd).
  ServeSignals signals;
  // Threads start on first use, after a --daemonize fork.
  BlockingPool pool(config.blocking_threads);
  // Plain exports open without event loops, so a missing file fails before the fork.
  std::vector<OpenedExport> exports = open_plain_exports(config, pool);

  IoThreads threads(config.threads);
  nbd::Server server(threads, server_settings(config));

  std::string log_file =
      o.log_file.empty() ? "" : std::filesystem::absolute(o.log_file).lexically_normal().string();
  std::string pidfile =
      o.pidfile.empty() ? "" : std::filesystem::absolute(o.pidfile).lexically_normal().string();
  Daemon daemon;
  // The child keeps the terminal's stderr until ready(), so every failure below still reaches
  // the user, and the parent exits with the child's status.
  if (o.daemonize) daemon.detach(threads);
  threads.start();

  // Clones need running event loops: their sources connect through them.
  std::vector<OpenedExport> clones;
  try {
    clones = open_clone_exports(config, threads, pool);
  } catch (...) {
    threads.stop();
    threads.join();
    throw;
  }
  exports.insert(exports.end(), clones.begin(), clones.end());
  std::sort(exports.begin(), exports.end(),
            [](const OpenedExport& a, const OpenedExport& b) { return a.index < b.index; });
  auto registry = std::make_shared<ControlRegistry>();
  for (OpenedExport& e : exports) {
    server.add_export(e.export_, e.is_default);
    if (e.clone)
      registry->add_clone(e.clone);
    else
      registry->add_export(e.export_);
  }
  std::unique_ptr<ControlServer> control;
  try {
    server.start();  // binds
    if (!config.control.empty()) {
      control = std::make_unique<ControlServer>(threads.next(), registry);
      control->start(config.control);
    }
  } catch (...) {
    close_clones(exports, threads);
    threads.stop();
    threads.join();
    throw;
  }

  PidFile pid_file;
  if (!pidfile.empty()) pid_file.write(pidfile);
  log::info("serve.ready", {{"pid", static_cast<long>(::getpid())},
                            {"addresses", joined(server.bound_addresses())},
                            {"exports", exports.size()},
                            {"clones", clones.size()},
                            {"control", config.control},
                            {"threads", threads.size()}});
  if (o.daemonize) daemon.ready(log_file);

  bool stopping = false;
  for (;;) {
    std::optional<int> signal = signals.wait();
    if (!signal) break;  // shutdown finished
    if (*signal == SIGHUP) {
      log::info("serve.sighup_ignored");
      continue;
    }
    if (stopping) {
      // A second request to stop: the user does not want to wait for clients. What was
      // written is in the page cache and survives the process; a clone resumes from its
      // last commit.
      log::warn("serve.forced_exit", {{"signal", ::strsignal(*signal)}});
      return 1;
    }
    stopping = true;
    log::info("serve.stopping", {{"signal", ::strsignal(*signal)}});
    if (control) control->stop();
    server.shutdown([&signals] { signals.notify_done(); });
  }
  // Clients are gone and exports flushed; let clones finish background work and commit.
  close_clones(exports, threads);
  threads.stop();
  threads.join();
  log::info("serve.stopped");
  return 0;
}

int run(int argc, char** argv) {
  ServeOptions options;
  try {
    options = parse_options(argc, argv);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "hydrate serve: %s (try 'hydrate serve --help')\n", e.what());
    return 2;
  }
  if (options.help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  try {
    return serve(options);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "hydrate serve: %s (try 'hydrate serve --help')\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    // Bad configuration, missing file, address in use, …: one line, no stack trace.
    std::fprintf(stderr, "hydrate serve: %s\n", e.what());
    return 1;
  }
}

}  // namespace

HYDRATE_REGISTER_COMMAND(serve, Command{"serve", "serve files, devices and clones over NBD", run});

}  // namespace hydrate::cli
