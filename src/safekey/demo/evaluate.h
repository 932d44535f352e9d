// Evaluation of one toy model: greedy generation on every world split, judged by the world's oracle
// and, for comparison, by the refusal-keywords judge on the answer part.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "safekey/infer/guard.h"
#include "safekey/world/dataset.h"
#include "safekey/world/report.h"

namespace safekey::demo {

struct EvalSettings {
  int64_t max_new_tokens = 160;
  int64_t batch_size = 32;
  // 1.0: the toy grammar repeats the request's words in U by design, which the reference's 1.2
  // would penalise (docs/toy_world.md, "Evaluation protocol").
  double repetition_penalty = 1.0;
};

// Generates, judges, writes `out_json` (every completion with its verdict, and the split scores)
// and returns the scores. When `out_json` exists it is a cache: only the splits it lacks, or holds
// for other prompts (a per-split key of ids, messages and prefills), are generated, and the file is
// rewritten with exactly the requested splits.
// With `guard` the key-sentence guard runs during generation (head_path: the model's SafeKey
// checkpoint); each completion records its verdict and `guard_scores` (when given) receives, per
// split, the head's score of every prompt (-1 where U never ended).
world::ModelEval evaluate_model(const std::string& model_dir,
                                const std::map<std::string, std::vector<world::Item>>& splits,
                                const std::string& method, int64_t seed, const EvalSettings& settings,
                                const std::string& out_json, const infer::GuardOptions* guard = nullptr,
                                std::map<std::string, std::vector<double>>* guard_scores = nullptr);

// The cache key of a split's prompts (16 hex digits).
std::string split_prompt_key(const std::vector<world::Item>& items);

// The prompt text the model sees: the chat template with the generation prompt, then the prefill.
std::string world_prompt_text(const std::string& rendered_generation_prompt, const world::Item& item);

}  // namespace safekey::demo
