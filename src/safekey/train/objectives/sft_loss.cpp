#include "safekey/train/objectives/sft_loss.h"

#include <algorithm>

namespace safekey::train {

TargetPositions pack_target_positions(const std::vector<std::vector<int64_t>>& positions,
                                      const std::vector<std::vector<int64_t>>& targets) {
  const int64_t B = static_cast<int64_t>(positions.size());
  int64_t P = 1;
  for (const auto& p : positions) P = std::max<int64_t>(P, static_cast<int64_t>(p.size()));
  TargetPositions out;
  out.positions = torch::zeros({B, P}, torch::kInt64);
  out.targets = torch::full({B, P}, -100, torch::kInt64);
  auto pa = out.positions.accessor<int64_t, 2>();
  auto ta = out.targets.accessor<int64_t, 2>();
  for (int64_t b = 0; b < B; ++b) {
    const auto& pr = positions[static_cast<size_t>(b)];
    for (size_t i = 0; i < pr.size(); ++i) {
      pa[b][static_cast<int64_t>(i)] = pr[i];
      ta[b][static_cast<int64_t>(i)] = targets[static_cast<size_t>(b)][i];
    }
    out.count += static_cast<int64_t>(pr.size());
  }
  return out;
}

TargetPositions sft_target_positions(const torch::Tensor& labels) {
  auto lab = labels.to(torch::kCPU).contiguous();
  auto a = lab.accessor<int64_t, 2>();
  const int64_t B = lab.size(0), T = lab.size(1);
  std::vector<std::vector<int64_t>> pos(static_cast<size_t>(B)), tgt(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t + 1 < T; ++t)
      if (a[b][t + 1] != -100) {
        pos[static_cast<size_t>(b)].push_back(t);
        tgt[static_cast<size_t>(b)].push_back(a[b][t + 1]);
      }
  return pack_target_positions(pos, tgt);
}

torch::Tensor gather_positions(const torch::Tensor& hidden, const torch::Tensor& positions) {
  // hidden [B, T, H], positions [B, P] -> [B, P, H]
  auto idx = positions.to(hidden.device()).unsqueeze(-1).expand({-1, -1, hidden.size(-1)});
  return hidden.gather(1, idx);
}

TokenLoss token_cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets) {
  TokenLoss out;
  auto tg = targets.to(logits.device()).reshape({-1});            // [B*P]
  auto lg = logits.to(torch::kFloat32).reshape({-1, logits.size(-1)});  // [B*P, V]
  auto valid = tg.ne(-100);
  out.count = valid.sum().item<int64_t>();
  if (out.count == 0) {
    out.loss = torch::zeros({}, lg.options());
    return out;
  }
  auto sum = torch::nn::functional::cross_entropy(
      lg, tg, torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100).reduction(torch::kSum));
  out.loss = sum / static_cast<double>(out.count);
  {
    torch::NoGradGuard ng;
    out.correct = (lg.argmax(-1).eq(tg) & valid).sum().item<int64_t>();
  }
  return out;
}

}  // namespace safekey::train
