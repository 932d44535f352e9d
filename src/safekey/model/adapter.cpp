#include "safekey/model/adapter.h"

#include <ATen/CPUGeneratorImpl.h>

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

}  // namespace safekey::model
