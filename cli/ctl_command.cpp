#include <cstdio>
#include <string>

#include "cli/command.h"
#include "cli/control_client.h"
#include "cli/control_socket_path.h"
#include "cli/status_format.h"
#include "config/units.h"

namespace hydrate::cli {
namespace {

void usage(std::FILE* out) {
  std::fprintf(out,
               "usage: hydrate ctl EXPORT pause|resume [--control PATH | -c CONFIG]\n"
               "       hydrate ctl EXPORT set KEY=VALUE... [--control PATH | -c CONFIG]\n\n"
               "Steers a clone's background hydration while it runs (on-demand reads and\n"
               "client writes are never paused).\n\n"
               "  pause          stop starting background batches (in-flight ones finish)\n"
               "  resume         start again\n"
               "  set rate=R     bandwidth cap, e.g. 100MiB/s (0 = unlimited)\n"
               "  set batch=S    largest contiguous fetch, e.g. 4MiB\n"
               "  set max_inflight=S   upper bound of the adaptive in-flight window\n"
               "  set min_share=P      percent of the window the copy keeps while clients read\n");
}

int run(int argc, char** argv) {
  std::string control, config;
  std::vector<std::string> words;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    }
    if (a == "--control" || a == "-c" || a == "--config") {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "hydrate ctl: %s needs a value\n", a.c_str());
        return 2;
      }
      (a == "--control" ? control : config) = argv[++i];
      continue;
    }
    if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "hydrate ctl: unknown option '%s'\n", a.c_str());
      return 2;
    }
    words.push_back(a);
  }
  if (words.size() < 2) {
    usage(stderr);
    return 2;
  }
  const std::string& name = words[0];
  const std::string& verb = words[1];
  nlohmann::json request = {{"command", verb}, {"export", name}};
  if (verb == "pause" || verb == "resume") {
    if (words.size() != 2) {
      std::fprintf(stderr, "hydrate ctl: '%s' takes no arguments\n", verb.c_str());
      return 2;
    }
  } else if (verb == "set") {
    if (words.size() < 3) {
      std::fprintf(stderr,
                   "hydrate ctl: 'set' needs KEY=VALUE (rate, batch, max_inflight, min_share)\n");
      return 2;
    }
    nlohmann::json settings = nlohmann::json::object();
    for (size_t i = 2; i < words.size(); ++i) {
      auto eq = words[i].find('=');
      if (eq == std::string::npos) {
        std::fprintf(stderr, "hydrate ctl: '%s' is not KEY=VALUE\n", words[i].c_str());
        return 2;
      }
      std::string key = words[i].substr(0, eq), value = words[i].substr(eq + 1);
      std::optional<uint64_t> bytes;
      std::string_view form;
      if (key == "rate") {
        bytes = config::parse_rate(value);
        form = config::kRateForm;
      } else if (key == "batch" || key == "max_inflight") {
        bytes = config::parse_size(value);
        form = config::kSizeForm;
      } else if (key == "min_share") {
        bytes = config::parse_percent(value);
        form = config::kPercentForm;
      } else {
        std::fprintf(stderr,
                     "hydrate ctl: unknown setting '%s' (rate, batch, max_inflight, min_share)\n",
                     key.c_str());
        return 2;
      }
      if (!bytes) {
        std::fprintf(stderr, "hydrate ctl: %s='%s': expected %.*s\n", key.c_str(), value.c_str(),
                     static_cast<int>(form.size()), form.data());
        return 2;
      }
      settings[key] = *bytes;
    }
    request["settings"] = settings;
  } else {
    std::fprintf(stderr, "hydrate ctl: unknown action '%s' (pause, resume, set)\n", verb.c_str());
    return 2;
  }
  nlohmann::json reply = control_request(resolve_control_socket(control, config), request);
  if (!reply.value("ok", false)) {
    std::fprintf(stderr, "hydrate ctl: %s\n", reply.value("error", std::string("?")).c_str());
    return 1;
  }
  std::fputs(format_export_status(reply["export"], 0).c_str(), stdout);
  return 0;
}

}  // namespace

HYDRATE_REGISTER_COMMAND(ctl, Command{"ctl", "pause, resume or retune a clone's hydration", run});

}  // namespace hydrate::cli
