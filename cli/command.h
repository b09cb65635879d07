#pragma once

#include <string_view>
#include <vector>

namespace hydrate::cli {

// One `hydrate <name> …` subcommand. Each lives in its own file and registers itself with
// HYDRATE_REGISTER_COMMAND, so adding a command never edits a shared table.
struct Command {
  std::string_view name;
  std::string_view summary;  // one line for `hydrate --help`
  // argv[0] is the subcommand name. Returns the process exit status.
  int (*run)(int argc, char** argv);
};

bool register_command(const Command& command);
const std::vector<Command>& commands();

}  // namespace hydrate::cli

#define HYDRATE_REGISTER_COMMAND(ident, ...) \
  static const bool ident##_registered = ::hydrate::cli::register_command(__VA_ARGS__)
