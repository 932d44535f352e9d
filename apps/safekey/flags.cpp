// The one flag table. Each section lives in flags/<area>.inc so that areas can grow independently;
// the table itself is this single array. A row: {name, aliases, default, help, env, commands, switch}.
// `commands` lists the subcommands that accept the flag ("*" = every subcommand).
#include "cli.h"

namespace safekey::cli {

const std::vector<Flag>& flag_table() {
  static const std::vector<Flag> table = {
#include "flags/common.inc"
#include "flags/model.inc"
#include "flags/lora.inc"
#include "flags/text.inc"
#include "flags/template.inc"
#include "flags/data.inc"
#include "flags/train.inc"
#include "flags/dist.inc"
#include "flags/infer.inc"
#include "flags/eval.inc"
#include "flags/serve.inc"
#include "flags/analyze.inc"
#include "flags/demo.inc"
  };
  return table;
}

}  // namespace safekey::cli
