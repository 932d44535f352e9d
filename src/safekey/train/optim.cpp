#include "safekey/train/optim.h"

#include <cmath>
#include <cstring>
#include <map>

#include "safekey/io/safetensors.h"
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
  for (auto& [name, p] : model->hf_named_parameters())
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

AdamW::AdamW(std::vector<ParamGroup> groups, AdamWOptions options)
    : groups_(std::move(groups)), opt_(options) {
  for (const auto& g : groups_) state_.emplace_back(g.params.size());
}

void AdamW::step(double lr) {
  torch::NoGradGuard ng;
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    const double wd = groups_[gi].weight_decay;
    for (size_t pi = 0; pi < groups_[gi].params.size(); ++pi) {
      auto& p = groups_[gi].params[pi].second;
      if (!p.grad().defined()) continue;
      State& s = state_[gi][pi];
      const bool mixed = p.scalar_type() != torch::kFloat32;
      if (!s.exp_avg.defined()) {
        s.exp_avg = torch::zeros(p.sizes(), p.options().dtype(torch::kFloat32));
        s.exp_avg_sq = torch::zeros(p.sizes(), p.options().dtype(torch::kFloat32));
        if (mixed && !s.master.defined()) s.master = p.detach().to(torch::kFloat32);
      }
      torch::Tensor w = mixed ? s.master : p;
      torch::Tensor g = mixed ? p.grad().to(torch::kFloat32) : p.grad();
      s.step += 1;
      w.mul_(1.0 - lr * wd);
      s.exp_avg.mul_(opt_.beta1).add_(g, 1.0 - opt_.beta1);
      s.exp_avg_sq.mul_(opt_.beta2).addcmul_(g, g, 1.0 - opt_.beta2);
      const double bc1 = 1.0 - std::pow(opt_.beta1, static_cast<double>(s.step));
      const double bc2 = 1.0 - std::pow(opt_.beta2, static_cast<double>(s.step));
      auto denom = (s.exp_avg_sq.sqrt() / std::sqrt(bc2)).add_(opt_.eps);
      w.addcdiv_(s.exp_avg, denom, -lr / bc1);
      if (mixed) p.copy_(w);
    }
  }
}

void AdamW::zero_grad() {
  for (auto& g : groups_)
    for (auto& [n, p] : g.params)
      if (p.grad().defined()) p.mutable_grad() = torch::Tensor();
}

void AdamW::save_state(const std::string& path) const {
  std::vector<torch::Tensor> keep;
  std::vector<io::WriteTensor> out;
  auto add = [&](const std::string& name, torch::Tensor t) {
    t = t.detach().to(torch::kCPU).contiguous();
    keep.push_back(t);
    io::WriteTensor w;
    w.name = name;
    w.dtype = t.scalar_type() == torch::kInt64 ? io::DType::I64 : io::DType::F32;
    w.shape = t.sizes().vec();
    w.data = t.data_ptr();
    out.push_back(w);
  };
  for (size_t gi = 0; gi < groups_.size(); ++gi)
    for (size_t pi = 0; pi < groups_[gi].params.size(); ++pi) {
      const auto& name = groups_[gi].params[pi].first;
      const State& s = state_[gi][pi];
      add("step." + name, torch::tensor({s.step}, torch::kInt64));
      if (!s.exp_avg.defined()) continue;
      add("exp_avg." + name, s.exp_avg);
      add("exp_avg_sq." + name, s.exp_avg_sq);
      if (s.master.defined()) add("master." + name, s.master);
    }
  io::write_safetensors(path, out);
}

void AdamW::load_state(const std::string& path) {
  io::SafetensorsFile f(path);
  auto read = [&](const std::string& name, const torch::Tensor& like) {
    auto v = f.get(name);
    std::vector<int64_t> want = like.sizes().vec();
    SK_CHECK(v.shape() == want, path, ": tensor '", name, "' has shape ", c10::IntArrayRef(v.shape()),
             ", expected ", like.sizes());
    SK_CHECK(v.dtype() == io::DType::F32, path, ": tensor '", name, "' must be F32");
    auto t = torch::empty(want, torch::kFloat32);
    std::memcpy(t.data_ptr(), v.data, v.nbytes);
    return t.to(like.device());
  };
  for (size_t gi = 0; gi < groups_.size(); ++gi)
    for (size_t pi = 0; pi < groups_[gi].params.size(); ++pi) {
      const auto& [name, p] = groups_[gi].params[pi];
      State& s = state_[gi][pi];
      auto st = f.get("step." + name);
      SK_CHECK(st.dtype() == io::DType::I64 && st.nbytes == 8, path, ": tensor 'step.", name, "' must be one I64");
      std::memcpy(&s.step, st.data, 8);
      if (!f.contains("exp_avg." + name)) continue;
      s.exp_avg = read("exp_avg." + name, p);
      s.exp_avg_sq = read("exp_avg_sq." + name, p);
      if (f.contains("master." + name)) s.master = read("master." + name, p);
    }
}

double lr_lambda(int64_t step, int64_t warmup_steps, int64_t total_steps, bool constant) {
  if (step < warmup_steps) return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup_steps));
  if (constant) return 1.0;
  const double progress = static_cast<double>(step - warmup_steps) /
                          static_cast<double>(std::max<int64_t>(1, total_steps - warmup_steps));
  return std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * progress)));
}

double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm) {
  torch::NoGradGuard ng;
  std::vector<torch::Tensor> norms;
  for (const auto& p : params)
    if (p.grad().defined()) norms.push_back(p.grad().to(torch::kFloat32).norm());
  if (norms.empty()) return 0.0;
  const double total = torch::stack(norms).norm().item<double>();
  if (max_norm > 0) {
    const double coef = max_norm / (total + 1e-6);
    if (coef < 1.0)
      for (const auto& p : params)
        if (p.grad().defined()) p.grad().mul_(coef);
  }
  return total;
}

}  // namespace safekey::train
