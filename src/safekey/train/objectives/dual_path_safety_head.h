// The Dual-Path Safety Head's loss (SPEC.md §4 step 2; PAPER.md §2.2 "DPSH as coded"). The head
// module lives in model/safety_head.h (inference uses it too):
//   C_head   on h_U  = mean(h[c_begin:c_end])  — the understanding U alone (the paper's H2),
//   ctx_head on h_XU = mean(h[0:c_end])        — query plus U (the paper's H1).
// L_head = θ·BCEWithLogits(C_head(h_U), unsafe) + (1-θ)·BCEWithLogits(ctx_head(h_XU), unsafe),
// each a mean over the batch.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "safekey/model/safety_head.h"
#include "safekey/train/batch.h"

namespace safekey::train {

using model::SafetyHead;
using model::SafetyHeadImpl;
using model::load_safety_head;
using model::save_safety_head;

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

}  // namespace safekey::train
