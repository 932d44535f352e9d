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

TokenLoss token_cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets, bool host_values) {
  TokenLoss out;
  out.count = targets.to(torch::kCPU).ne(-100).sum().item<int64_t>();  // host targets: no device sync
  auto tg = targets.to(logits.device()).reshape({-1});                    // [B*P]
  auto lg = logits.to(torch::kFloat32).reshape({-1, logits.size(-1)});    // [B*P, V]
  if (out.count == 0) {
    out.loss = torch::zeros({}, lg.options());
    out.correct_count = torch::zeros({}, tg.options());
    return out;
  }
  auto sum = torch::nn::functional::cross_entropy(
      lg, tg, torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100).reduction(torch::kSum));
  out.loss = sum / static_cast<double>(out.count);
  {
    torch::NoGradGuard ng;
    out.correct_count = (lg.argmax(-1).eq(tg) & tg.ne(-100)).sum();
  }
  if (host_values) out.correct = out.correct_count.item<int64_t>();
  return out;
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The weight the LM head multiplies by (lm_head.weight, or the tied embedding).
torch::Tensor lm_head_weight(model::DecoderModelImpl& model) {
  torch::Tensor embed;
  for (auto& [name, p] : model.hf_named_parameters()) {
    if (name == "lm_head.weight") return p;
    if (name == "model.embed_tokens.weight") embed = p;
  }
  TORCH_CHECK(embed.defined(), "lm_head_cross_entropy: the model has no LM head weight");
  return embed;
}

// Sum of the cross-entropy over chunks of target rows; backward recomputes each chunk's logits.
// Inputs: h [N, H] (targets' hidden states), w (the LM head weight, for the graph), targets [N].
struct ChunkedLmCrossEntropy : public torch::autograd::Function<ChunkedLmCrossEntropy> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor h, torch::Tensor w, torch::Tensor targets,
                               model::DecoderModelImpl* model, int64_t chunk, torch::Tensor* correct_out) {
    ctx->save_for_backward({h, targets});
    ctx->saved_data["model"] = reinterpret_cast<int64_t>(model);
    ctx->saved_data["chunk"] = chunk;
    torch::NoGradGuard ng;
    const int64_t N = h.size(0);
    auto total = torch::zeros({}, h.options().dtype(torch::kFloat32));
    for (int64_t s = 0; s < N; s += chunk) {
      const int64_t n = std::min(chunk, N - s);
      auto logits = model->lm_head_logits(h.narrow(0, s, n)).to(torch::kFloat32);
      auto t = targets.narrow(0, s, n);
      total += torch::nn::functional::cross_entropy(
          logits, t, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
      *correct_out += logits.argmax(-1).eq(t).sum();
    }
    return total;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    auto saved = ctx->get_saved_variables();
    torch::Tensor h = saved[0], targets = saved[1];
    auto* model = reinterpret_cast<model::DecoderModelImpl*>(ctx->saved_data["model"].toInt());
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    const int64_t N = h.size(0);
    const torch::Tensor w = lm_head_weight(*model);
    torch::AutoGradMode grad_on(true);
    std::vector<torch::Tensor> grad_h;
    torch::Tensor grad_w;
    for (int64_t s = 0; s < N; s += chunk) {
      const int64_t n = std::min(chunk, N - s);
      auto hd = h.narrow(0, s, n).detach().requires_grad_(true);
      auto logits = model->lm_head_logits(hd).to(torch::kFloat32);
      auto loss = torch::nn::functional::cross_entropy(
          logits, targets.narrow(0, s, n), torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
      std::vector<torch::Tensor> wrt = {hd};
      if (w.requires_grad()) wrt.push_back(w);
      auto g = torch::autograd::grad({loss}, wrt, {grad_out[0]}, /*retain_graph=*/false, /*create_graph=*/false,
                                     /*allow_unused=*/true);
      grad_h.push_back(g[0]);
      if (w.requires_grad() && g[1].defined()) grad_w = grad_w.defined() ? grad_w + g[1] : g[1];
    }
    return {torch::cat(grad_h, 0), grad_w, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

TokenLoss lm_head_cross_entropy(model::DecoderModel& model, const torch::Tensor& hidden,
                                const torch::Tensor& targets, int64_t chunk_tokens, bool host_values) {
  auto tg = targets.reshape({-1});
  auto valid_cpu = tg.to(torch::kCPU).ne(-100);
  const int64_t count = valid_cpu.sum().item<int64_t>();
  if (chunk_tokens <= 0 || count <= chunk_tokens)
    return token_cross_entropy(model->lm_head_logits(hidden), targets, host_values);
  TokenLoss out;
  out.count = count;
  auto idx = valid_cpu.nonzero().reshape({-1}).to(hidden.device());
  auto h = hidden.reshape({-1, hidden.size(-1)}).index_select(0, idx);  // [N, H]
  auto t = tg.to(hidden.device()).index_select(0, idx);                  // [N]
  auto correct = torch::zeros({}, torch::TensorOptions().dtype(torch::kInt64).device(hidden.device()));
  auto sum = ChunkedLmCrossEntropy::apply(h, lm_head_weight(*model), t, model.get(), chunk_tokens, &correct);
  out.loss = sum / static_cast<double>(count);
  out.correct_count = correct;
  if (host_values) out.correct = correct.item<int64_t>();
  return out;
}

}  // namespace safekey::train
