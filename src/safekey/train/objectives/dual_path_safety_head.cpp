#include "safekey/train/objectives/dual_path_safety_head.h"

#include "safekey/util/error.h"

namespace safekey::train {

HeadLoss dual_path_safety_head(SafetyHead& head, const torch::Tensor& hidden, const Batch& batch,
                               double theta) {
  const int64_t B = batch.batch_size();
  std::vector<torch::Tensor> h_C, h_ctx;  // each [H]
  std::vector<int64_t> rows_C, rows_ctx;
  for (int64_t b = 0; b < B; ++b) {
    const auto& r = batch.rows[static_cast<size_t>(b)];
    if (r.c_end > r.c_begin) {
      h_C.push_back(hidden[b].slice(0, r.c_begin, r.c_end).mean(0));
      rows_C.push_back(b);
    }
    if (r.c_end > 0) {
      h_ctx.push_back(hidden[b].slice(0, 0, r.c_end).mean(0));
      rows_ctx.push_back(b);
    }
  }
  HeadLoss out;
  out.skipped_rows = (B - static_cast<int64_t>(rows_C.size())) + (B - static_cast<int64_t>(rows_ctx.size()));
  auto y = batch.unsafe.to(hidden.device());
  auto term = [&](torch::nn::Linear& lin, std::vector<torch::Tensor>& pooled, const std::vector<int64_t>& rows,
                  torch::Tensor* logits) {
    if (rows.empty()) {
      *logits = torch::zeros({0}, hidden.options().dtype(torch::kFloat32));
      return torch::zeros({}, hidden.options().dtype(torch::kFloat32));
    }
    auto h = torch::stack(pooled, 0);  // [B', H]
    *logits = lin->forward(h.to(lin->weight.dtype())).squeeze(-1).to(torch::kFloat32);  // [B']
    auto yy = y.index_select(0, torch::tensor(rows, torch::kInt64).to(hidden.device()));
    return torch::binary_cross_entropy_with_logits(*logits, yy);
  };
  out.L_C = term(head->C_head, h_C, rows_C, &out.logit_C);
  out.L_ctx = term(head->ctx_head, h_ctx, rows_ctx, &out.logit_ctx);
  out.loss = theta * out.L_C + (1.0 - theta) * out.L_ctx;
  return out;
}

}  // namespace safekey::train
