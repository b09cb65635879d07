#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string_view>

#include "cli/command.h"

namespace hydrate::cli {

static std::vector<Command>& registry() {
  static std::vector<Command> commands;
  return commands;
}

bool register_command(const Command& command) {
  registry().push_back(command);
  return true;
}

const std::vector<Command>& commands() {
  auto& all = registry();
  std::sort(all.begin(), all.end(), [](auto& a, auto& b) { return a.name < b.name; });
  return all;
}

static void usage(std::FILE* out) {
  std::fprintf(out,
               "usage: hydrate <command> [options]\n\n"
               "Instant, crash-safe clones of block devices over NBD.\n\ncommands:\n");
  for (const Command& c : commands())
    std::fprintf(out, "  %-8.*s %.*s\n", static_cast<int>(c.name.size()), c.name.data(),
                 static_cast<int>(c.summary.size()), c.summary.data());
  std::fprintf(out, "\n`hydrate <command> --help` describes one command.\n");
}

}  // namespace hydrate::cli

int main(int argc, char** argv) {
  using namespace hydrate::cli;
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  std::string_view name = argv[1];
  if (name == "-h" || name == "--help" || name == "help") {
    usage(stdout);
    return 0;
  }
  if (name == "--version" || name == "version") {
    std::printf("hydrate %s\n", HYDRATE_VERSION);
    return 0;
  }
  for (const Command& c : commands()) {
    if (c.name == name) {
      try {
        return c.run(argc - 1, argv + 1);
      } catch (const std::exception& e) {
        // Commands report their own errors; this is the last line of defence against a
        // stack trace reaching the user.
        std::fprintf(stderr, "hydrate %s: %s\n", argv[1], e.what());
        return 1;
      }
    }
  }
  std::fprintf(stderr, "hydrate: unknown command '%s' (try 'hydrate --help')\n", argv[1]);
  return 2;
}
