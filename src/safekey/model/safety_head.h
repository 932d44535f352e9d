// The Dual-Path Safety Head as a module (SPEC.md §4 step 2; PAPER.md §2.2 "DPSH as coded"): two
// Linear(hidden, 1) probes on final hidden states (after the final RMSNorm),
//   C_head   on h_U  = mean(h[c_begin:c_end])  — the understanding sentence U alone,
//   ctx_head on h_XU = mean(h[0:c_end])        — query plus U.
// The trainer's loss (train/objectives/dual_path_safety_head.h) and the inference-time key-sentence
// guard (infer/guard.h) both use it. Parameter names are the reference's ("C_head.weight", ...), so
// its safety_head.safetensors loads as is.
#pragma once
#include <torch/torch.h>

#include <string>

namespace safekey::model {

class SafetyHeadImpl : public torch::nn::Module {
 public:
  // PyTorch's default Linear initialisation (uniform ±1/sqrt(hidden)) from the global torch RNG.
  explicit SafetyHeadImpl(int64_t hidden_size);
  torch::nn::Linear C_head{nullptr}, ctx_head{nullptr};
};
TORCH_MODULE(SafetyHead);

// The head's unsafe probabilities for one sequence, from pooled hidden states.
struct HeadScores {
  double logit_u = 0, logit_xu = 0;
  double p_u = 0, p_xu = 0;  // sigmoid of the logits
};
// h_u, h_xu: [H] mean hidden states (any float dtype, any device the head is on).
HeadScores score_safety_head(SafetyHead& head, const torch::Tensor& h_u, const torch::Tensor& h_xu);

// safetensors with C_head.weight [1,H], C_head.bias [1], ctx_head.weight [1,H], ctx_head.bias [1].
// The hidden size is checked against the head's.
void load_safety_head(SafetyHead& head, const std::string& path);
void save_safety_head(SafetyHead& head, const std::string& path);
// The hidden size a head file was trained for (C_head.weight's second dimension).
int64_t safety_head_hidden_size(const std::string& path);

}  // namespace safekey::model
