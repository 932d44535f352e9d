// Optimisation as the reference (SPEC.md §4 hyper-parameters): AdamW with decoupled weight decay
// over parameter groups, the cosine schedule with linear warm-up of transformers'
// get_cosine_schedule_with_warmup, global-norm gradient clipping, and the optimizer state as
// safetensors for exact resume.
#pragma once
#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "safekey/model/decoder.h"
#include "safekey/train/objectives/dual_path_safety_head.h"

namespace safekey::train {

using NamedTensor = std::pair<std::string, torch::Tensor>;

struct ParamGroup {
  std::string name;  // "decay", "no_decay", "head_decay", "head_no_decay"
  double weight_decay = 0;
  std::vector<NamedTensor> params;
};

// Default: no decay on 1-D parameters (biases, RMSNorm / q_norm / k_norm weights); the safety head
// (names "safety_head.C_head.weight", ...) is trained with its biases. reference_compat: the
// reference's groups — no decay only on names containing "bias" or "LayerNorm.weight" (so RMSNorm
// weights ARE decayed), and the head's biases are never given to the optimizer.
// `head` may be null.
std::vector<ParamGroup> make_param_groups(model::DecoderModel& model, SafetyHead* head,
                                          double weight_decay, bool reference_compat);

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
};

// torch.optim.AdamW (amsgrad off) step for step. A parameter whose .grad is undefined is skipped
// (its moments and step count stay), as PyTorch does with set_to_none gradients. Parameters that are
// not float32 (bf16 on CUDA) keep an fp32 master copy that the update runs on.
class AdamW {
 public:
  AdamW(std::vector<ParamGroup> groups, AdamWOptions options);
  void step(double lr);
  void zero_grad();  // set every gradient to undefined
  const std::vector<ParamGroup>& groups() const { return groups_; }
  // Moments, per-parameter step counts and master weights; load checks names and shapes.
  void save_state(const std::string& path) const;
  void load_state(const std::string& path);

 private:
  struct State {
    torch::Tensor exp_avg, exp_avg_sq, master;
    int64_t step = 0;
  };
  std::vector<ParamGroup> groups_;
  std::vector<std::vector<State>> state_;
  AdamWOptions opt_;
};

// lr multiplier of transformers' get_cosine_schedule_with_warmup at optimizer step `step`
// (0-based, the step about to be taken): step/warmup during warm-up, then
// 0.5·(1 + cos(π·progress)). constant = true: warm-up then 1.
double lr_lambda(int64_t step, int64_t warmup_steps, int64_t total_steps, bool constant = false);

// The global 2-norm of the gradients (norm of the per-parameter float32 norms, as
// clip_grad_norm_); undefined gradients count as zero. When max_norm > 0, scales every gradient
// by min(1, max_norm / (norm + 1e-6)). Returns the norm before clipping.
double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm);

// Every parameter of the groups.
std::vector<torch::Tensor> all_params(const std::vector<ParamGroup>& groups);

}  // namespace safekey::train
