// Dual-Path Safety Head (SPEC.md §4 step 2; PAPER.md §2.2 "DPSH as coded").
//
// Two Linear(hidden, 1) probes on the final hidden states h (after the final RMSNorm):
//   C_head   on h_U  = mean(h[c_begin:c_end])  — the understanding U alone (the paper's H2),
//   ctx_head on h_XU = mean(h[0:c_end])        — query plus U (the paper's H1).
// L_head = θ·BCEWithLogits(C_head(h_U), unsafe) + (1-θ)·BCEWithLogits(ctx_head(h_XU), unsafe),
// each a mean over the batch. The parameter names are the reference's ("C_head.weight", ...), so
// its safety_head.safetensors loads as is.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "safekey/train/batch.h"

namespace safekey::train {

class SafetyHeadImpl : public torch::nn::Module {
 public:
  // PyTorch's default Linear initialisation (uniform ±1/sqrt(hidden)) from the global torch RNG.
  explicit SafetyHeadImpl(int64_t hidden_size);
  torch::nn::Linear C_head{nullptr}, ctx_head{nullptr};
};
TORCH_MODULE(SafetyHead);

struct HeadLoss {
  torch::Tensor loss;       // θ·L_C + (1-θ)·L_ctx (scalar)
  torch::Tensor L_C, L_ctx;  // scalars
  torch::Tensor logit_C, logit_ctx;  // [B'] for the rows used
  int64_t skipped_rows = 0;  // rows with an empty U (no C_head term) or empty [0, c_end)
};

// hidden [B, T, H]; spans and labels from `batch`. A row with an empty U is left out of L_C (and a
// row with c_end == 0 out of L_ctx) and counted in skipped_rows, so the loss is never NaN.
HeadLoss dual_path_safety_head(SafetyHead& head, const torch::Tensor& hidden, const Batch& batch,
                               double theta);

// safetensors with C_head.weight [1,H], C_head.bias [1], ctx_head.weight [1,H], ctx_head.bias [1].
void load_safety_head(SafetyHead& head, const std::string& path);
void save_safety_head(SafetyHead& head, const std::string& path);

}  // namespace safekey::train
