// The one flag table. Each section lives in flags/<area>.inc so that areas can grow independently;
// the table itself is this single array. A row: {name, aliases, default, help, env, commands, switch}.
// `commands` lists the subcommands that accept the flag ("*" = every subcommand).
// The flags of `safekey train` are not written here: they come from the training option table
// (src/safekey/train/options.cpp), which also gives the config-file keys and run_config.json.
#include <deque>

#include "cli.h"
#include "safekey/train/options.h"

namespace safekey::cli {

namespace {

bool takes_train(const Flag& f) {
  const std::string c = std::string(",") + f.commands + ",";
  return c == ",*," || c.find(",train,") != std::string::npos;
}

// One flag per row of the training option table that has a flag. A flag every subcommand already
// takes (--device, --seed from common.inc) keeps its common row.
void add_train_flags(std::vector<Flag>& table) {
  static std::deque<std::string> commands;  // stable storage for Flag::commands
  for (const auto& o : train::train_schema().options()) {
    if (o.flag.empty()) continue;
    bool common = false;
    for (const auto& f : table) common = common || (o.flag == f.name && takes_train(f));
    if (common) continue;
    commands.push_back(o.shared_with.empty() ? "train" : "train," + o.shared_with);
    table.push_back(Flag{o.flag.c_str(), o.aliases.c_str(), o.default_value.c_str(), o.help.c_str(), o.env.c_str(),
                         commands.back().c_str(), o.type == config::Type::Bool, o.repeatable});
  }
}

std::vector<Flag> build_table() {
  std::vector<Flag> table = {
#include "flags/common.inc"
#include "flags/model.inc"
#include "flags/lora.inc"
#include "flags/text.inc"
#include "flags/template.inc"
#include "flags/data.inc"
  };
  add_train_flags(table);
  table.insert(table.end(), {
#include "flags/train.inc"
#include "flags/dist.inc"
#include "flags/infer.inc"
#include "flags/eval.inc"
#include "flags/serve.inc"
#include "flags/analyze.inc"
#include "flags/demo.inc"
  });
  return table;
}

}  // namespace

const std::vector<Flag>& flag_table() {
  static const std::vector<Flag> table = build_table();
  return table;
}

}  // namespace safekey::cli
