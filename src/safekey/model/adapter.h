// LoRA adapters on a decoder model's Linear modules (layers.h: LinearImpl::add_lora). The adapters'
// parameters are submodules of the Linears they adapt, so they live, move and checkpoint with the
// model; hf_named_parameters() leaves them out (they are not the base checkpoint's tensors) and
// lora_parameters() lists them under PEFT's module paths.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "safekey/model/decoder.h"
#include "safekey/model/layers.h"

namespace safekey::model {

// Every Linear by its HF module path ("model.layers.0.self_attn.q_proj", ..., "lm_head"), in
// registration order.
std::vector<std::pair<std::string, std::shared_ptr<LinearImpl>>> linear_modules(DecoderModel& m);

// Attaches fresh adapters (A Kaiming-uniform from `seed`, B zero) to the Linears whose path `targets`
// accepts, and freezes every base parameter. Returns the adapted paths; none is an error.
std::vector<std::string> add_lora(DecoderModel& m, const std::function<bool(const std::string&)>& targets,
                                  const LoraOptions& options, uint64_t seed);

// The adapters' parameters as ("<path>.lora_A.weight", A [r, in]) and ("<path>.lora_B.weight",
// B [out, r]), in module order.
std::vector<std::pair<std::string, torch::Tensor>> lora_parameters(DecoderModel& m);

}  // namespace safekey::model
