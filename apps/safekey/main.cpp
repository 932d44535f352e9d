// `safekey`: dispatches to a subcommand (one thin file per subcommand, cmd_*.cpp), prints any
// error as one line and exits non-zero.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "cli.h"
#include "safekey/tensor/runtime.h"
#include "safekey/util/error.h"

using namespace safekey;

static void print_overview() {
  std::cout << "safekey — SafeKey training, evaluation and serving for reasoning models\n\n"
               "Usage: safekey <command> [flags]   (safekey <command> --help for its flags)\n\n"
               "Commands:\n";
  for (const auto& c : cli::commands()) {
    std::string lhs = "  " + c.name;
    std::cout << lhs << std::string(lhs.size() < 24 ? 24 - lhs.size() : 1, ' ') << c.summary << "\n";
  }
}

int main(int argc, char** argv) {
  std::vector<std::string> words(argv + 1, argv + argc);
  if (words.empty() || words[0] == "--help" || words[0] == "-h" || words[0] == "help") {
    print_overview();
    return words.empty() ? 2 : 0;
  }
  // Longest matching command name: "tokenizer train" before "tokenizer".
  const cli::Command* cmd = nullptr;
  size_t used = 0;
  for (const auto& c : cli::commands()) {
    size_t n = 1 + static_cast<size_t>(std::count(c.name.begin(), c.name.end(), ' '));
    if (n > words.size() || n <= used) continue;
    std::string joined = words[0];
    for (size_t i = 1; i < n; ++i) joined += " " + words[i];
    if (joined == c.name) {
      cmd = &c;
      used = n;
    }
  }
  if (!cmd) {
    std::cerr << "safekey: unknown command '" << words[0] << "' (see safekey --help)\n";
    return 2;
  }
  std::vector<std::string> rest(words.begin() + static_cast<long>(used), words.end());
  for (const auto& w : rest) {
    if (w == "--") break;  // the words after it belong to another command (safekey launch)
    if (w == "--help" || w == "-h") {
      std::cout << cli::help_for(*cmd);
      return 0;
    }
  }
  try {
    cli::Args args = cli::parse_args(cmd->name, rest);
    runtime::set_threads(static_cast<int>(args.i64("threads")));
    runtime::set_cpu_memory(args.str("cpu-memory"), args.str("device"));
    return cmd->run(args);
  } catch (const Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
