// `safekey demo`: the toy world end to end (docs/toy_world.md, "The demo").
//   1. world      generate the datasets (stage 1, stage 2, eval splits, analysis records)
//   2. tokenizer  byte-level BPE trained on the world corpus, R1-Distill added tokens and template
//   3. init       tiny Qwen2 model from random init (HF folder)
//   4. stage 1    helpful-only base LRM (SFT from scratch on stage 1)
//   5. stage 2    per method x seed: sft | safekey (QMM + safety head) | head_only | qmm_only
//   6. evaluate   greedy generation on every split, oracle + refusal-keywords judges
//   7. analyze    attention shares of K on U / X, linear probe at the end of U
//   8. report     report.md, report.json, comparison.svg, attention.svg
// Every stage writes its output under the run folder and is skipped when that output exists, so a
// rerun continues where it stopped. The hyper-parameters are fixed here (DemoPlan), not tuned on the
// stage-2 comparison.
#pragma once
#include <string>
#include <vector>

#include "safekey/util/json.h"

namespace safekey::demo {

struct DemoOptions {
  std::string out = "runs/demo";
  bool quick = false;
  int64_t seeds = 5;
  std::vector<std::string> methods = {"sft", "safekey", "head_only", "qmm_only"};
  std::string jailbreak_templates;  // extra templates file ("" = none)
  uint64_t world_seed = 2002;
  // Stop after stage 1 and evaluate only the base model (tuning stage 1 on stage-1 metrics alone).
  bool stage1_only = false;
};

// Every size and hyper-parameter of a run (full or quick), saved as plan.json.
struct DemoPlan {
  json world, model, stage1, stage2, eval;
};
DemoPlan make_plan(const DemoOptions& o);

// Runs the whole pipeline; returns the report's path. Progress goes to stderr.
std::string run_demo(const DemoOptions& o);

}  // namespace safekey::demo
