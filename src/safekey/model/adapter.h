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

#include "safekey/lora/peft.h"
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

// A second model over the same base weights (no copy: every HF parameter shares the base's
// storage), to carry its own adapters — several adapters served from one base.
DecoderModel share_weights(DecoderModel& base);

// The model's adapters as a PEFT adapter with `config` (A and B copied to the CPU).
lora::Adapter adapter_of(DecoderModel& m, const lora::LoraConfig& config);

// Applies an adapter (e.g. lora::load_adapter) to a model on the fly: each module of the adapter gets
// a LoRA of the adapter's rank, scale and dropout with its A and B (float32 on the model's device).
// A module path the model lacks, or shapes that do not fit the module, is an error naming `source`.
// The base parameters are frozen.
void attach_adapter(DecoderModel& m, const lora::Adapter& adapter, const std::string& source);

// Copies an adapter's A and B into the model's existing adapters (a resume): the same modules and
// shapes, or an error naming `source`.
void load_adapter_weights(DecoderModel& m, const lora::Adapter& adapter, const std::string& source);

}  // namespace safekey::model
