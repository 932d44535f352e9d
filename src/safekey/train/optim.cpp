#include "safekey/train/optim.h"

#include <cmath>

#include "safekey/model/adapter.h"
#include "safekey/util/error.h"

namespace safekey::train {

std::vector<ParamGroup> make_param_groups(model::DecoderModel& model, SafetyHead* head,
                                          double weight_decay, bool reference_compat) {
  ParamGroup decay{"decay", weight_decay, {}}, no_decay{"no_decay", 0.0, {}};
  ParamGroup head_decay{"head_decay", weight_decay, {}}, head_no_decay{"head_no_decay", 0.0, {}};
  auto is_no_decay = [&](const std::string& name, const torch::Tensor& p) {
    if (reference_compat)
      return name.find("bias") != std::string::npos || name.find("LayerNorm.weight") != std::string::npos;
    return p.dim() <= 1;
  };
  for (auto& [name, p] : model->hf_named_parameters()) {
    if (!p.requires_grad()) continue;  // frozen: the base model of a LoRA run
    (is_no_decay(name, p) ? no_decay : decay).params.emplace_back(name, p);
  }
  for (auto& [name, p] : model::lora_parameters(model))  // the adapters, under their PEFT module paths
    (is_no_decay(name, p) ? no_decay : decay).params.emplace_back(name, p);
  if (head) {
    for (auto& kv : (*head)->named_parameters()) {
      std::string name = "safety_head." + kv.key();
      bool nd = is_no_decay(name, kv.value());
      if (reference_compat && nd) continue;  // the reference never optimises the head biases
      (nd ? head_no_decay : head_decay).params.emplace_back(name, kv.value());
    }
  }
  std::vector<ParamGroup> out;
  for (auto* g : {&decay, &no_decay, &head_decay, &head_no_decay})
    if (!g->params.empty()) out.push_back(std::move(*g));
  return out;
}

std::vector<torch::Tensor> all_params(const std::vector<ParamGroup>& groups) {
  std::vector<torch::Tensor> out;
  for (const auto& g : groups)
    for (const auto& [n, p] : g.params) out.push_back(p);
  return out;
}

std::vector<dist::OptimParam> optim_params(const std::vector<ParamGroup>& groups) {
  std::vector<dist::OptimParam> out;
  for (const auto& g : groups)
    for (const auto& [n, p] : g.params) out.push_back({n, p, g.weight_decay, {}});
  return out;
}

AdamW::AdamW(std::vector<ParamGroup> groups, AdamWOptions options)
    : dist::ShardedAdamW(std::make_shared<dist::ProcessGroup>(), optim_params(groups), options),
      groups_(std::move(groups)) {}

double lr_lambda(int64_t step, int64_t warmup_steps, int64_t total_steps, bool constant) {
  if (step < warmup_steps) return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup_steps));
  if (constant) return 1.0;
  const double progress = static_cast<double>(step - warmup_steps) /
                          static_cast<double>(std::max<int64_t>(1, total_steps - warmup_steps));
  return std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * progress)));
}

}  // namespace safekey::train
