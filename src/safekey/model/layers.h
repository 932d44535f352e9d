// The building blocks of the decoder (private to src/safekey/model): Linear, RMSNorm, rotary
// embedding, GQA self-attention, SwiGLU MLP and the decoder layer. Each mirrors the HF class of the
// same role and registers its parameters under the HF names, so the model's named_parameters() are
// the checkpoint's tensor names. Numerics follow HF 4.51 (see ../shared/golden/README.md).
#pragma once
#include <torch/torch.h>

#include "safekey/model/config.h"

namespace safekey::model {

class KVCache;

// How parameters are created: their dtype and device, and whether they are deferred — empty
// placeholders of the right rank (no elements), filled later. ZeRO-3 defers the decoder layers'
// parameters: each rank then keeps only its slice of them (train/zero3.h), so no rank ever allocates
// the whole model. The real shapes are ModelConfig::parameter_shapes().
struct ParamInit {
  torch::TensorOptions options = torch::TensorOptions().dtype(torch::kFloat32);
  bool deferred = false;
  torch::Tensor make(const std::vector<int64_t>& shape, double fill) const;
};

class LinearImpl;

// A LoRA adapter on a Linear (Hu et al., 2021), computed as Hugging Face PEFT does:
// y = x W^T + b + scale · B(A(dropout(x))), with A [r, in] and B [out, r] registered as the
// submodules "lora_A" and "lora_B" (so their parameters are named "<module>.lora_A.weight", PEFT's key
// without its "base_model.model." prefix). The adapter computes in float32 (its weights are
// float32 whatever the base dtype, as PEFT keeps them) and the sum is cast back to the base dtype.
struct LoraOptions {
  int64_t r = 8;
  double scale = 1.0;    // alpha / r (or alpha / sqrt(r) with rsLoRA)
  double dropout = 0.0;  // on the adapter's input, in training mode only
};

// y = x W^T + b. Weights start at zero; init_weights() or load_model() fills them.
class LinearImpl : public torch::nn::Module {
 public:
  LinearImpl(int64_t in, int64_t out, bool bias, const ParamInit& init = {});
  torch::Tensor forward(const torch::Tensor& x);
  // Attaches an adapter (A Kaiming-uniform as PEFT initialises it, drawn from `gen`; B zero).
  void add_lora(const LoraOptions& o, at::Generator gen);
  bool has_lora() const { return static_cast<bool>(lora_A_); }
  const LoraOptions& lora_options() const { return lora_; }
  torch::Tensor& lora_A();  // [r, in] float32
  torch::Tensor& lora_B();  // [out, r] float32
  torch::Tensor weight, bias;  // [out, in], [out] or undefined

 private:
  LoraOptions lora_;
  std::shared_ptr<LinearImpl> lora_A_, lora_B_;
};
TORCH_MODULE(Linear);

// HF RMSNorm: weight * to_input_dtype(x_f32 * rsqrt(mean(x_f32^2) + eps)).
class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps, const ParamInit& init = {});
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;  // [dim]
  double eps;
};
TORCH_MODULE(RMSNorm);

// Token embeddings [vocab, hidden] (zeros until loaded; no random draw at construction).
class EmbeddingImpl : public torch::nn::Module {
 public:
  EmbeddingImpl(int64_t vocab, int64_t dim, const ParamInit& init = {});
  torch::Tensor forward(const torch::Tensor& ids) { return torch::embedding(weight, ids); }
  torch::Tensor weight;
};
TORCH_MODULE(Embedding);

// Rotary tables for a batch of positions, computed in float32 as HF does.
struct Rope {
  torch::Tensor cos, sin;  // [B, T, 1, head_dim] in the model dtype
};
// inv_freq [head_dim/2] float32, default or llama3-scaled.
torch::Tensor rope_inv_freq(const ModelConfig& cfg);
Rope rope_tables(const torch::Tensor& inv_freq, const torch::Tensor& position_ids,
                 torch::ScalarType dtype);

// Per-forward context shared by all layers.
struct AttentionContext {
  Rope rope;
  // Additive mask [Bm, 1, T, S] (Bm = 1 or B) in the model dtype: 0 = visible, finfo.min = hidden.
  // Undefined = no masking needed (single-token decode without key mask) or, with `causal`, plain
  // causal attention without cache.
  torch::Tensor mask;
  bool causal_only = false;  // mask undefined but causality applies (T > 1, no cache, no key mask)
  KVCache* cache = nullptr;
  // When set, every layer appends its attention probabilities [B, heads, T, S] (explicit softmax
  // path; `mask` must then be defined for T > 1).
  std::vector<torch::Tensor>* attentions = nullptr;
};

class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(const ModelConfig& cfg, int64_t layer_idx, const ParamInit& init = {});
  // x [B, T, H] -> [B, T, H]
  torch::Tensor forward(const torch::Tensor& x, const AttentionContext& ctx);
  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  RMSNorm q_norm{nullptr}, k_norm{nullptr};  // Qwen3 only

 private:
  int64_t layer_idx_, heads_, kv_heads_, head_dim_;
  double scale_;
};
TORCH_MODULE(Attention);

class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(const ModelConfig& cfg, const ParamInit& init = {});
  // x [B, T, H] -> down(silu(gate(x)) * up(x)) [B, T, H]
  torch::Tensor forward(const torch::Tensor& x);
  Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(Mlp);

// Called around every use of a decoder layer's parameters when they live sharded across ranks
// (ZeRO-3, train/zero3.h): acquire() makes them whole before the layer runs, release() drops them
// after; in backward the layer is recomputed between another acquire/release and its parameters'
// gradients are handed to gradients() (in parameters() order, undefined = none) instead of being
// accumulated into .grad.
class LayerParamHooks {
 public:
  virtual ~LayerParamHooks() = default;
  virtual void acquire(int64_t layer) = 0;
  virtual void release(int64_t layer) = 0;
  virtual void gradients(int64_t layer, const std::vector<torch::Tensor>& grads) = 0;
};

class DecoderLayerImpl : public torch::nn::Module {
 public:
  DecoderLayerImpl(const ModelConfig& cfg, int64_t layer_idx, const ParamInit& init = {});
  // Pre-norm residual block: x [B, T, H] -> [B, T, H]
  torch::Tensor forward(const torch::Tensor& x, const AttentionContext& ctx);
  // Same result, but the layer's activations are recomputed in backward (gradient checkpointing).
  // With `hooks`: the layer's parameters are acquired/released around the forward and the recompute.
  torch::Tensor forward_checkpointed(const torch::Tensor& x, const AttentionContext& ctx,
                                     LayerParamHooks* hooks = nullptr, int64_t index = 0);
  // Whether a forward in this mode draws random numbers (LoRA dropout while training).
  bool draws_random() const;
  Attention self_attn{nullptr};
  Mlp mlp{nullptr};
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
};
TORCH_MODULE(DecoderLayer);

}  // namespace safekey::model
