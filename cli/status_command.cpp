#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "cli/command.h"
#include "cli/control_client.h"
#include "cli/control_socket_path.h"
#include "cli/status_format.h"

namespace hydrate::cli {
namespace {

void usage(std::FILE* out) {
  std::fprintf(
      out,
      "usage: hydrate status [EXPORT] [--json] [--watch] [--wait] [--interval SECONDS]\n"
      "                      [--control PATH | -c CONFIG]\n\n"
      "Shows each export of a running `hydrate serve` (or nbdkit plugin): a clone's state\n"
      "(hydrating, paused, complete, read-only, failed, starting), the copy in bytes of\n"
      "source data (percent of the data, data still to fetch, the recent data rate and\n"
      "the ETA at that rate; holes need no copy and do not count), regions hydrated,\n"
      "bytes in flight, source connections and errors, last commit.\n\n"
      "  --json       machine-readable output (one JSON object)\n"
      "  --watch      refresh until interrupted (a live progress bar on a terminal)\n"
      "  --wait       like --watch, but exit 0 once every clone shown is complete,\n"
      "               1 as soon as one is failed or read-only\n"
      "  --interval   seconds between refreshes (default 1)\n"
      "  --control    the control socket (default: the config's `control:`, then\n"
      "               $HYDRATE_CONTROL, then %s)\n",
      kDefaultControlSocket);
}

int run(int argc, char** argv) {
  std::string name, control, config;
  bool json = false, watch = false, wait = false;
  double interval = 1.0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* flag) -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(std::string(flag) + " needs a value");
      return argv[++i];
    };
    if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    } else if (a == "--json") {
      json = true;
    } else if (a == "--watch") {
      watch = true;
    } else if (a == "--wait") {
      watch = wait = true;
    } else if (a == "--interval") {
      std::string v = value("--interval");
      char* end = nullptr;
      interval = std::strtod(v.c_str(), &end);
      if (!end || *end || !(interval > 0))
        throw std::runtime_error("--interval wants a positive number of seconds, got '" + v + "'");
    } else if (a == "--control") {
      control = value("--control");
    } else if (a == "-c" || a == "--config") {
      config = value("-c");
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "hydrate status: unknown option '%s'\n", a.c_str());
      usage(stderr);
      return 2;
    } else if (name.empty()) {
      name = a;
    } else {
      std::fprintf(stderr, "hydrate status: only one export name, got '%s' and '%s'\n",
                   name.c_str(), a.c_str());
      return 2;
    }
  }
  std::string socket = resolve_control_socket(control, config);
  nlohmann::json request = {{"command", "status"}};
  if (!name.empty()) request["export"] = name;

  bool tty = ::isatty(STDOUT_FILENO) && !json;
  size_t drawn_lines = 0;
  for (;;) {
    nlohmann::json reply = control_request(socket, request);
    if (!reply.value("ok", false)) {
      std::fprintf(stderr, "hydrate status: %s\n", reply.value("error", std::string("?")).c_str());
      return 1;
    }
    std::string text;
    if (json) {
      text = reply.dump(2) + "\n";
    } else {
      for (auto& e : reply["exports"]) text += format_export_status(e, tty ? 30 : 0);
    }
    if (tty && watch && drawn_lines > 0) {
      std::printf("\033[%zuA\033[J", drawn_lines);  // redraw in place
    }
    std::fputs(text.c_str(), stdout);
    std::fflush(stdout);
    drawn_lines = static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
    if (!watch) return 0;
    if (wait) {
      bool all_complete = true;
      for (auto& e : reply["exports"]) {
        std::string state = e.value("state", "");
        if (e.value("type", "") != "clone") continue;
        if (state == "failed" || state == "read-only") return 1;
        if (state != "complete") all_complete = false;
      }
      if (all_complete) return 0;
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(interval));
  }
}

}  // namespace

HYDRATE_REGISTER_COMMAND(status, Command{"status", "show exports, clone progress and health", run});

}  // namespace hydrate::cli
