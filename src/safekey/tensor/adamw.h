// The AdamW update of torch.optim.AdamW (amsgrad off) on one tensor, in place: decoupled weight
// decay, then the moments, then the bias-corrected step. Element-wise, so it may run on any slice of
// a parameter (the sharded optimizer updates only this rank's slice). `step` is the 1-based count
// of updates including this one.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace safekey::tensor {

struct AdamWHyper {
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
};

void adamw_update(at::Tensor& w, const at::Tensor& g, at::Tensor& exp_avg, at::Tensor& exp_avg_sq, int64_t step,
                  double lr, double weight_decay, const AdamWHyper& h);

// The global 2-norm of the gradients (norm of the per-parameter float32 norms, as
// clip_grad_norm_); undefined gradients count as zero. When max_norm > 0, scales every gradient
// by min(1, max_norm / (norm + 1e-6)). Returns the norm before clipping.
double clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm);

}  // namespace safekey::tensor
