// The decoder-only transformer of the Qwen2 / Llama / Qwen3 family in libtorch. Submodules are
// registered under Hugging Face parameter names ("model.layers.0.self_attn.q_proj.weight", ...), so
// safetensors checkpoints load and save without a name map.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "safekey/model/config.h"
#include "safekey/model/layers.h"

namespace safekey::model {

// Per-layer key/value cache for incremental decoding, batch-capable.
// keys[l], values[l]: [B, kv_heads, S, head_dim] for layer l; S grows by the appended length.
struct KVCache {
  std::vector<torch::Tensor> keys, values;
  int64_t length() const { return keys.empty() || !keys[0].defined() ? 0 : keys[0].size(2); }
  void clear() { keys.clear(); values.clear(); }
  // Keeps only the batch rows in `rows` (for dropping finished sequences).
  void select_rows(const torch::Tensor& rows);
};

struct ForwardInput {
  torch::Tensor input_ids;     // [B, T] int64
  torch::Tensor position_ids;  // [B, T] int64; undefined = past_length + arange(T)
  // [B, S_total] where S_total = cache length + T; 1 = this key is visible, 0 = hidden from every
  // query. Undefined = all visible. Combined with causality. A query whose keys are all hidden gets
  // finite values (never NaN).
  torch::Tensor key_mask;
  KVCache* cache = nullptr;    // when set, attends to cached keys and appends this step's keys
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

class DecoderModelImpl : public torch::nn::Module {
 public:
  explicit DecoderModelImpl(const ModelConfig& cfg);
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
  // Parameters by their HF name; the tied lm_head is not listed separately.
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

// Loads config.json + model.safetensors (or a sharded index) from an HF folder.
DecoderModel load_model(const std::string& dir, torch::ScalarType dtype = torch::kFloat32,
                        torch::Device device = torch::kCPU);
// Copies the weights of an HF folder into an existing model of the same architecture, one tensor at
// a time (no second model: the extra memory is one tensor's). Shapes are checked; a tensor the model
// lacks, or a parameter the folder lacks, is an error naming the file.
void load_weights(DecoderModel& m, const std::string& dir);
// Writes config.json + safetensors (sharded above max_shard_bytes, with index), atomically.
void save_model(DecoderModel& m, const std::string& dir, int64_t max_shard_bytes = 5'000'000'000LL,
                const std::string& dtype = "");

}  // namespace safekey::model
