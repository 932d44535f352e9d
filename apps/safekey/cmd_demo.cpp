// `safekey demo`: the toy world end to end — tokenizer, tiny Qwen2 LRM, stage 1, stage 2 (SFT vs
// SafeKey and ablations x seeds), evaluation, analyses, report. See src/safekey/demo/pipeline.h and
// docs/toy_world.md.
#include "cli.h"
#include "safekey/demo/pipeline.h"
#include "safekey/util/error.h"

namespace safekey {
namespace {

int run_demo_cmd(cli::Args& a) {
  demo::DemoOptions o;
  o.quick = a.on("quick");
  o.out = a.str("out");
  const std::string w = a.str("world");
  SK_CHECK(w == "v1" || w == "v2", "--world must be v1 or v2 (got '", w, "')");
  o.world = w == "v1" ? 1 : 2;
  o.seeds = a.i64("seeds");
  o.methods = a.list("methods");
  demo::apply_world_defaults(o);
  o.jailbreak_templates = a.str("jailbreak-templates");
  o.world_seed = static_cast<uint64_t>(a.i64("seed"));
  o.stage1_only = a.on("stage1-only");
  o.stage1_epochs = a.i64("stage1-epochs");
  SK_CHECK(o.stage1_epochs >= 0, "--stage1-epochs must be >= 0 (0 = the world's default), got ", o.stage1_epochs);
  demo::run_demo(o);
  return 0;
}

cli::Registrar reg({"demo", "the toy world end to end: pretrain a tiny LRM, safety-tune it with SFT and SafeKey, evaluate, report",
                    "safekey demo [--world v2|v1] [--quick] [--out DIR] [--seeds N] [--methods sft,safekey,...] [--jailbreak-templates FILE]\n"
                    "  --quick: small sizes, 2 seeds (checks the pipeline in minutes)",
                    run_demo_cmd});

}  // namespace
}  // namespace safekey
