// The AdamW update of torch.optim.AdamW (amsgrad off) on one tensor, in place: decoupled weight
// decay, then the moments, then the bias-corrected step. Element-wise, so it may run on any slice of
// a parameter (the sharded optimizer updates only this rank's slice). `step` is the 1-based count
// of updates including this one.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace safekey::tensor {

struct AdamWHyper {
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
};

void adamw_update(at::Tensor& w, const at::Tensor& g, at::Tensor& exp_avg, at::Tensor& exp_avg_sq, int64_t step,
                  double lr, double weight_decay, const AdamWHyper& h);

}  // namespace safekey::tensor
