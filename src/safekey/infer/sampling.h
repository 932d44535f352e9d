// Sampling parameters and the per-step token choice (vLLM's order): repetition penalty over prompt
// and generated tokens, then temperature, then top-k, then top-p, then one draw from a per-sequence
// RNG. temperature 0 (or below 1e-5) is greedy: the argmax after the penalty.
// SPEC.md section 5 gives the reference settings: greedy, repetition penalty 1.2.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace safekey::infer {

struct SamplingParams {
  int64_t max_new_tokens = 256;
  double temperature = 0.0;          // 0 = greedy
  double top_p = 1.0;                // 1 = off
  int64_t top_k = -1;                // -1 or 0 = off
  double repetition_penalty = 1.0;   // vLLM semantics; 1 = off; the reference uses 1.2
  std::optional<uint64_t> seed;      // per-request seed; unset = drawn from the generator's seed
  std::vector<std::string> stop;     // stop strings; the text is cut before the first match
  std::vector<int64_t> stop_token_ids;  // extra stop ids, besides the model's eos ids
  bool ignore_eos = false;           // keep going past eos (benchmarks)
  bool skip_special_tokens = true;   // special tokens are left out of the text (vLLM default)

  // Throws Error naming `where` and the field for out-of-range values.
  void validate(const std::string& where) const;
  bool greedy() const { return temperature < 1e-5; }
};

// vLLM's repetition penalty on one row of logits [V] (float32, in place): every distinct token id
// in `seen` (prompt and generated tokens) has its logit divided by `penalty` when positive and
// multiplied by it otherwise.
void apply_repetition_penalty(torch::Tensor& logits, const std::vector<int64_t>& seen_unique,
                              double penalty);

// Chooses the next token from one row of logits [V] (already penalised).
int64_t choose_token(const torch::Tensor& logits, const SamplingParams& p, std::mt19937_64& rng);

// The same choice for a batch of rows, as tensor ops on the logits' device (the engine's path):
// logits [n, V] float32 (not modified); seen [n, V] bool, the ids each row's repetition penalty
// applies to (undefined = no penalty anywhere); params[i] row i's parameters; uniforms[i] one draw
// in [0, 1) from row i's RNG (ignored for greedy rows). Returns the chosen ids [n] int64 on the
// logits' device. The distribution is choose_token's: penalty, temperature, top-k, top-p, then the
// first candidate (in descending order) whose cumulative mass exceeds u times the kept mass.
torch::Tensor choose_tokens(const torch::Tensor& logits, const torch::Tensor& seen,
                            const std::vector<const SamplingParams*>& params, const std::vector<double>& uniforms);

}  // namespace safekey::infer
