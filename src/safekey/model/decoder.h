// The decoder-only transformer of the Qwen2 / Llama / Qwen3 family in libtorch. Submodules are
// registered under Hugging Face parameter names ("model.layers.0.self_attn.q_proj.weight", ...), so
// safetensors checkpoints load and save without a name map.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "safekey/io/safetensors.h"
#include "safekey/model/config.h"
#include "safekey/model/kv_cache.h"
#include "safekey/model/layers.h"

namespace safekey::model {

struct ForwardInput {
  torch::Tensor input_ids;     // [B, T] int64
  torch::Tensor position_ids;  // [B, T] int64; undefined = the row's cache length + arange(T)
  // [B, S_total] where S_total = cache length + T; 1 = this key is visible, 0 = hidden from every
  // query. Undefined = all visible. Combined with causality. A query whose keys are all hidden gets
  // finite values (never NaN).
  torch::Tensor key_mask;
  KVCache* cache = nullptr;    // when set, attends to cached keys and appends this step's keys
  // The cache slots of the rows (kv_cache.h); empty = rows 0..B-1. Each row appends at its slot's
  // length and attends to the slot's keys; with slots of different lengths the mask comes from the
  // lengths (and key_mask, when given, must then cover [B, max length + T]).
  std::vector<int64_t> cache_slots;
  bool compute_logits = true;  // false: only hidden states (saves the LM head matmul)
  // When defined: compute logits only at these positions [B, P] (e.g. the last token in decoding).
  torch::Tensor logits_positions;
  // Also return every layer's attention probabilities (ForwardOutput::attentions), for analysis.
  // Uses the explicit softmax path and no gradient checkpointing.
  bool output_attentions = false;
};

struct ForwardOutput {
  torch::Tensor logits;  // [B, T, V] (or [B, P, V] with logits_positions), float32 for fp32 models
  torch::Tensor hidden;  // [B, T, H] final hidden states after the final RMSNorm
  // With output_attentions: per layer [B, heads, T, S] softmax probabilities (S = cache + T).
  std::vector<torch::Tensor> attentions;
};

// Where and how a model's parameters are created (layers.h ParamInit): directly in the target dtype
// on the target device, so loading never builds an fp32 copy on the host first. With
// `defer_layers` the decoder layers' parameters are empty placeholders (ZeRO-3 fills only this
// rank's slices of them; see train/zero3.h).
struct ModelInit {
  torch::ScalarType dtype = torch::kFloat32;
  torch::Device device = torch::kCPU;
  bool defer_layers = false;
  bool defer_all = false;  // every parameter a placeholder (a model that will share another's weights)
};

class DecoderModelImpl : public torch::nn::Module {
 public:
  explicit DecoderModelImpl(const ModelConfig& cfg, const ModelInit& init = {});
  ForwardOutput forward(const ForwardInput& in);
  // Logits for hidden states [.., H] -> [.., V] (the LM head, tied or not).
  torch::Tensor lm_head_logits(const torch::Tensor& hidden);
  const ModelConfig& config() const { return cfg_; }
  // Recompute each decoder layer in backward instead of storing its activations. Gradients are
  // identical to the plain path.
  void set_gradient_checkpointing(bool on) { grad_ckpt_ = on; }
  bool gradient_checkpointing() const { return grad_ckpt_; }
  // ZeRO-3: the decoder layers' parameters are sharded and made whole around each use through
  // `hooks` (layers.h); the layers then always recompute in backward. nullptr: ordinary parameters.
  void set_layer_param_hooks(LayerParamHooks* hooks) { layer_hooks_ = hooks; }
  // Parameters by their HF name; the tied lm_head is not listed separately, LoRA adapters
  // (adapter.h) not at all.
  std::vector<std::pair<std::string, torch::Tensor>> hf_named_parameters() const;

 private:
  ModelConfig cfg_;
  bool grad_ckpt_ = false;
  LayerParamHooks* layer_hooks_ = nullptr;
  struct Impl;
  std::shared_ptr<Impl> impl_;
};
TORCH_MODULE(DecoderModel);

// HF's init: normal(0, initializer_range) for weights, zeros for biases, ones for norms.
void init_weights(DecoderModel& m, uint64_t seed);

// Loads config.json + model.safetensors (or a sharded index) from an HF folder. The parameters are
// created in `dtype` on `device` and filled tensor by tensor from the memory-mapped files (peak host
// memory: one tensor, not the model). With `defer_layers` the decoder layers are left as placeholders
// (checked against the files, not read).
DecoderModel load_model(const std::string& dir, torch::ScalarType dtype = torch::kFloat32,
                        torch::Device device = torch::kCPU, bool defer_layers = false);
// Copies the weights of an HF folder into an existing model of the same architecture, one tensor at
// a time (no second model: the extra memory is one tensor's). Shapes are checked; a tensor the model
// lacks, or a parameter the folder lacks, is an error naming the file. Placeholder parameters
// (ModelInit::defer_layers) are checked against the files but not read.
void load_weights(DecoderModel& m, const std::string& dir);
// The elements [begin, begin + dst.numel()) of the flattened tensor `name` of an opened checkpoint,
// converted into `dst` (any dtype/device); only those bytes of the file are touched.
void read_tensor_range(const io::Checkpoint& ckpt, const std::string& name, int64_t begin, torch::Tensor dst);
// Writes config.json + safetensors (sharded above max_shard_bytes, with index), atomically.
// `before_fetch(name)` runs before each tensor is read for writing, in the parameters' order (ZeRO-3
// gathers a layer there, train/zero3.h).
void save_model(DecoderModel& m, const std::string& dir, int64_t max_shard_bytes = 5'000'000'000LL,
                const std::string& dtype = "", const std::function<void(const std::string&)>& before_fetch = nullptr);

}  // namespace safekey::model
