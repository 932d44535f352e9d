// `safekey demo`: the toy world end to end (docs/toy_world.md, "The demo").
//   1. world      generate the datasets (stage 1, stage 2, eval splits, analysis records)
//   2. tokenizer  byte-level BPE trained on the world corpus, R1-Distill added tokens and template
//   3. init       tiny Qwen2 model from random init (HF folder)
//   4. stage 1    helpful-only base LRM (SFT from scratch on stage 1)
//   5. stage 2    v2 first calibrates the learning rate on validation splits (a pre-registered rule);
//                 per method x seed: sft | safekey (QMM + safety head) | head_only | qmm_only |
//                 safekey_pf (v2: with prefill / multi-turn training examples)
//   6. evaluate   greedy generation on every split, oracle + refusal-keywords judges; v2's
//                 safekey_guard row: the safekey models with the key-sentence guard, τ per model
//                 from validation splits (a pre-registered rule)
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
  int world = 2;                    // 1: the first world, exactly; 2: world v2 (docs/toy_world.md)
  bool quick = false;
  int64_t seeds = 0;                // 0 = the world's default (apply_world_defaults)
  std::vector<std::string> methods;  // empty = the world's default
  std::string jailbreak_templates;  // extra templates file ("" = none)
  uint64_t world_seed = 2002;
  // Stop after stage 1 and evaluate only the base model (tuning stage 1 on stage-1 metrics alone).
  bool stage1_only = false;
  // Stage-1 epochs; 0 = the world's default (a stage-1 tuning run sets a candidate).
  int64_t stage1_epochs = 0;
};

// Fills seeds and methods left at 0 / empty: v1 5 seeds of sft, safekey, head_only, qmm_only;
// v2 8 seeds of sft, safekey, safekey_guard, safekey_pf; --quick 2 seeds (v1: sft and safekey).
// Checks the method names.
void apply_world_defaults(DemoOptions& o);

// Every size and hyper-parameter of a run (full or quick), saved as plan.json. v2 adds the
// pre-registered rules: `calibration` (stage-2 learning rate) and `guard` (key sentence, τ rule).
struct DemoPlan {
  json world, model, stage1, stage2, eval, calibration, guard;
};
DemoPlan make_plan(const DemoOptions& o);

// Runs the whole pipeline; returns the report's path. Progress goes to stderr.
std::string run_demo(const DemoOptions& o);

}  // namespace safekey::demo
