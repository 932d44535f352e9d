// Optimisation as the reference (SPEC.md §4 hyper-parameters): AdamW with decoupled weight decay
// over parameter groups, the cosine schedule with linear warm-up of transformers'
// get_cosine_schedule_with_warmup, global-norm gradient clipping, and the optimizer state as
// safetensors for exact resume.
#pragma once
#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "safekey/dist/sharded_adamw.h"
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

using AdamWOptions = tensor::AdamWHyper;

// torch.optim.AdamW (amsgrad off) step for step, in one process: dist::ShardedAdamW over a world of
// one at ZeRO stage 0 (the trainer builds the same class over its process group). A parameter whose
// .grad is undefined is skipped (its moments and step count stay), as PyTorch does with set_to_none
// gradients. Parameters that are not float32 (bf16 on CUDA) keep an fp32 master copy that the update
// runs on. save_state / load_state: moments, per-parameter step counts and master weights.
class AdamW : public dist::ShardedAdamW {
 public:
  AdamW(std::vector<ParamGroup> groups, AdamWOptions options);
  const std::vector<ParamGroup>& groups() const { return groups_; }

 private:
  std::vector<ParamGroup> groups_;
};

// The parameters of the groups, each with its group's weight decay, for dist::ShardedAdamW.
std::vector<dist::OptimParam> optim_params(const std::vector<ParamGroup>& groups);

// lr multiplier of transformers' get_cosine_schedule_with_warmup at optimizer step `step`
// (0-based, the step about to be taken): step/warmup during warm-up, then
// 0.5·(1 + cos(π·progress)). constant = true: warm-up then 1.
double lr_lambda(int64_t step, int64_t warmup_steps, int64_t total_steps, bool constant = false);

// Global-norm gradient clipping (tensor/adamw.h), also what dist::ShardedAdamW runs at stages 0-1.
using tensor::clip_grad_norm;

// Every parameter of the groups.
std::vector<torch::Tensor> all_params(const std::vector<ParamGroup>& groups);

}  // namespace safekey::train
