// `safekey demo`: the toy world end to end — tokenizer, tiny Qwen2 LRM, stage 1, stage 2 (SFT vs
// SafeKey and ablations x seeds), evaluation, analyses, report. See src/safekey/demo/pipeline.h and
// docs/toy_world.md.
#include "cli.h"
#include "safekey/demo/pipeline.h"

namespace safekey {
namespace {

int run_demo_cmd(cli::Args& a) {
  demo::DemoOptions o;
  o.quick = a.on("quick");
  o.out = a.str("out");
  o.seeds = a.given("seeds") ? a.i64("seeds") : (o.quick ? 2 : a.i64("seeds"));
  o.methods = a.given("methods") ? a.list("methods")
                                 : (o.quick ? std::vector<std::string>{"sft", "safekey"} : a.list("methods"));
  o.jailbreak_templates = a.str("jailbreak-templates");
  o.world_seed = static_cast<uint64_t>(a.i64("seed"));
  o.stage1_only = a.on("stage1-only");
  demo::run_demo(o);
  return 0;
}

cli::Registrar reg({"demo", "the toy world end to end: pretrain a tiny LRM, safety-tune it with SFT and SafeKey, evaluate, report",
                    "safekey demo [--quick] [--out DIR] [--seeds N] [--methods sft,safekey,...] [--jailbreak-templates FILE]\n"
                    "  --quick: small sizes, 2 seeds, sft + safekey (checks the pipeline in minutes)",
                    run_demo_cmd});

}  // namespace
}  // namespace safekey
