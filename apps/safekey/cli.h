// The command-line layer: one declarative flag table (flags.cpp + flags/*.inc) shared by every
// subcommand, a parser that accepts `--flag value`, `--flag=value`, switches, the reference's
// underscore spellings (`--model_path` = `--model-path`) and aliases, and a command registry.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "safekey/util/json.h"

namespace safekey::cli {

struct Flag {
  const char* name;          // long name, kebab-case, without "--"
  const char* aliases;       // comma-separated other spellings ("" = none)
  const char* default_value; // shown in help; "" = no default (optional unless required)
  const char* help;
  const char* env;           // environment variable that overrides the default ("" = none)
  const char* commands;      // comma-separated subcommands that accept it; "*" = all
  bool is_switch = false;    // boolean flag: `--x`, `--x true|false`, `--no-x`
  bool repeatable = false;   // may be given several times; the values are joined with '\n'
};

// The whole table, in section order (see flags.cpp).
const std::vector<Flag>& flag_table();

class Args {
 public:
  Args(std::string command, std::map<std::string, std::string> values,
       std::map<std::string, bool> explicit_set, std::vector<std::string> positional);
  const std::string& command() const { return command_; }
  // Value of a flag (explicit, then env, then default). Throws when the flag is unknown to the
  // command, or for the typed getters when the value does not parse.
  std::string str(const std::string& name) const;
  int64_t i64(const std::string& name) const;
  double f64(const std::string& name) const;
  bool on(const std::string& name) const;
  // Comma-separated list value ("" -> empty list).
  std::vector<std::string> list(const std::string& name) const;
  // True when the user gave the flag (command line or --config file), not only a default.
  bool given(const std::string& name) const;
  // Fails with "--name is required" when the flag has no value.
  std::string required(const std::string& name) const;
  const std::vector<std::string>& positional() const { return positional_; }
  // Every flag the command accepts with its resolved value (for saving beside a run).
  json resolved() const;
  // Merges a JSON config file whose keys are flag names (either spelling). Command-line values win.
  // Unknown keys are an error naming the file and key.
  void merge_config_file(const std::string& path);
  void set(const std::string& name, const std::string& value);

 private:
  std::string command_;
  std::map<std::string, std::string> values_;
  std::map<std::string, bool> explicit_;
  std::vector<std::string> positional_;
};

struct Command {
  std::string name;     // "train", or two words for a family: "tokenizer train"
  std::string summary;  // one line for `safekey --help`
  std::string usage;    // example / description for `safekey NAME --help`
  std::function<int(Args&)> run;
};

void register_command(Command c);
const std::vector<Command>& commands();

struct Registrar {
  explicit Registrar(Command c) { register_command(std::move(c)); }
};

// Parses argv after the command words. Throws Error for unknown flags or missing values.
Args parse_args(const std::string& command, const std::vector<std::string>& argv);
// The flags a command accepts, in table order.
std::vector<const Flag*> flags_for(const std::string& command);
std::string help_for(const Command& c);

}  // namespace safekey::cli
