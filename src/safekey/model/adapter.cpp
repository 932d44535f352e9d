#include "safekey/model/adapter.h"

#include <ATen/CPUGeneratorImpl.h>

#include <map>

#include "safekey/util/error.h"

namespace safekey::model {

std::vector<std::pair<std::string, std::shared_ptr<LinearImpl>>> linear_modules(DecoderModel& m) {
  std::vector<std::pair<std::string, std::shared_ptr<LinearImpl>>> out;
  for (const auto& item : m->named_modules("", /*include_self=*/false)) {
    const std::string& path = item.key();
    // The adapters' own A and B are Linears too; they are not targets.
    if (path.find(".lora_A") != std::string::npos || path.find(".lora_B") != std::string::npos) continue;
    if (auto lin = std::dynamic_pointer_cast<LinearImpl>(item.value())) out.emplace_back(path, lin);
  }
  return out;
}

std::vector<std::string> add_lora(DecoderModel& m, const std::function<bool(const std::string&)>& targets,
                                  const LoraOptions& options, uint64_t seed) {
  for (auto& [name, p] : m->hf_named_parameters()) p.set_requires_grad(false);
  auto gen = at::detail::createCPUGenerator(seed);
  std::vector<std::string> adapted;
  for (auto& [path, lin] : linear_modules(m)) {
    if (!targets(path)) continue;
    lin->add_lora(options, gen);
    adapted.push_back(path);
  }
  SK_CHECK(!adapted.empty(), "LoRA: no Linear module of ", m->config().architecture,
           " matches the target modules (the modules are named like model.layers.0.self_attn.q_proj)");
  return adapted;
}

std::vector<std::pair<std::string, torch::Tensor>> lora_parameters(DecoderModel& m) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (auto& [path, lin] : linear_modules(m)) {
    if (!lin->has_lora()) continue;
    out.emplace_back(path + ".lora_A.weight", lin->lora_A());
    out.emplace_back(path + ".lora_B.weight", lin->lora_B());
  }
  return out;
}

DecoderModel share_weights(DecoderModel& base) {
  auto named = base->hf_named_parameters();
  SK_CHECK(!named.empty(), "share_weights: the model has no parameters");
  const auto& first = named.front().second;
  DecoderModel m(base->config(), ModelInit{first.scalar_type(), first.device(), false, true});
  auto mine = m->hf_named_parameters();
  SK_CHECK(mine.size() == named.size(), "share_weights: parameter lists differ");
  torch::NoGradGuard ng;
  for (size_t i = 0; i < mine.size(); ++i) {
    SK_CHECK(mine[i].first == named[i].first, "share_weights: ", mine[i].first, " vs ", named[i].first);
    mine[i].second.set_data(named[i].second.detach());
    mine[i].second.set_requires_grad(false);
  }
  m->eval();
  return m;
}

lora::Adapter adapter_of(DecoderModel& m, const lora::LoraConfig& config) {
  lora::Adapter a;
  a.config = config;
  for (auto& [path, lin] : linear_modules(m))
    if (lin->has_lora()) a.modules[path] = {lin->lora_A().detach().cpu().clone(), lin->lora_B().detach().cpu().clone()};
  return a;
}

namespace {

std::string shape_of(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? "," : "") + std::to_string(t.size(i));
  return s + "]";
}

// The module's A and B shapes must be [r, in] and [out, r] for its weight [out, in].
void check_fits(LinearImpl& lin, const std::string& path, const lora::ModuleAdapter& ma, const std::string& source) {
  const int64_t out = lin.weight.size(0), in = lin.weight.size(1);
  SK_CHECK(ma.A.dim() == 2 && ma.B.dim() == 2 && ma.A.size(1) == in && ma.B.size(0) == out && ma.A.size(0) == ma.B.size(1),
           source, ": the adapter of ", path, " has A ", shape_of(ma.A), " and B ", shape_of(ma.B),
           " but the module's weight is [", out, ",", in, "] (expected A [r,", in, "], B [", out, ",r]): "
           "the adapter was trained on another model");
}

}  // namespace

void attach_adapter(DecoderModel& m, const lora::Adapter& adapter, const std::string& source) {
  for (auto& [name, p] : m->hf_named_parameters()) p.set_requires_grad(false);
  std::map<std::string, std::shared_ptr<LinearImpl>> lin;
  for (auto& [path, l] : linear_modules(m)) lin[path] = l;
  const LoraOptions o{adapter.config.r, adapter.config.scale(), adapter.config.dropout};
  auto gen = at::detail::createCPUGenerator(0);
  torch::NoGradGuard ng;
  for (const auto& [path, ma] : adapter.modules) {
    auto it = lin.find(path);
    SK_CHECK(it != lin.end(), source, ": the adapter has module ", path, ", which ", m->config().architecture,
             " does not have (was it trained on another model?)");
    check_fits(*it->second, path, ma, source);
    it->second->add_lora(o, gen);
    it->second->lora_A().copy_(ma.A);
    it->second->lora_B().copy_(ma.B);
  }
}

void load_adapter_weights(DecoderModel& m, const lora::Adapter& adapter, const std::string& source) {
  size_t seen = 0;
  torch::NoGradGuard ng;
  for (auto& [path, lin] : linear_modules(m)) {
    if (!lin->has_lora()) continue;
    auto it = adapter.modules.find(path);
    SK_CHECK(it != adapter.modules.end(), source, ": no adapter for ", path, ", which this run adapts");
    check_fits(*lin, path, it->second, source);
    lin->lora_A().copy_(it->second.A);
    lin->lora_B().copy_(it->second.B);
    ++seen;
  }
  SK_CHECK(seen == adapter.modules.size(), source, ": the adapter has ", adapter.modules.size(),
           " modules, this run adapts ", seen);
}

}  // namespace safekey::model
