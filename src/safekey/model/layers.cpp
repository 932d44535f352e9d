#include "safekey/model/layers.h"

#include <torch/version.h>

#include <cmath>

#include "safekey/model/kv_cache.h"

namespace safekey::model {

torch::Tensor ParamInit::make(const std::vector<int64_t>& shape, double fill) const {
  if (deferred) return torch::empty(std::vector<int64_t>(shape.size(), 0), options);
  return torch::full(shape, fill, options);
}

LinearImpl::LinearImpl(int64_t in, int64_t out, bool has_bias, const ParamInit& init) {
  weight = register_parameter("weight", init.make({out, in}, 0.0));
  if (has_bias) bias = register_parameter("bias", init.make({out}, 0.0));
}

torch::Tensor LinearImpl::forward(const torch::Tensor& x) {
  torch::Tensor y = torch::linear(x, weight, bias);
  if (!lora_A_) return y;
  torch::Tensor h = x.to(torch::kFloat32);
  if (lora_.dropout > 0 && is_training()) h = torch::dropout(h, lora_.dropout, /*train=*/true);
  torch::Tensor delta = torch::linear(torch::linear(h, lora_A_->weight), lora_B_->weight) * lora_.scale;
  return y.scalar_type() == torch::kFloat32 ? y + delta : (y.to(torch::kFloat32) + delta).to(y.scalar_type());
}

void LinearImpl::add_lora(const LoraOptions& o, at::Generator gen) {
  TORCH_CHECK(!lora_A_, "add_lora: the module already has an adapter");
  TORCH_CHECK(o.r > 0, "add_lora: rank must be > 0");
  const int64_t in = weight.size(1), out = weight.size(0);
  const ParamInit f32{torch::TensorOptions().dtype(torch::kFloat32).device(weight.device()), false};
  lora_ = o;
  lora_A_ = register_module("lora_A", std::make_shared<LinearImpl>(in, o.r, false, f32));
  lora_B_ = register_module("lora_B", std::make_shared<LinearImpl>(o.r, out, false, f32));
  // PEFT: kaiming_uniform_(A, a=sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)); drawn on the CPU in float32 so
  // the values depend only on the generator, then moved.
  torch::NoGradGuard no_grad;
  const double bound = 1.0 / std::sqrt(static_cast<double>(in));
  torch::Tensor a = torch::empty({o.r, in}, torch::kFloat32);
  a.uniform_(-bound, bound, gen);
  lora_A_->weight.copy_(a);
}

torch::Tensor& LinearImpl::lora_A() {
  TORCH_CHECK(lora_A_, "the module has no adapter");
  return lora_A_->weight;
}

torch::Tensor& LinearImpl::lora_B() {
  TORCH_CHECK(lora_B_, "the module has no adapter");
  return lora_B_->weight;
}

RMSNormImpl::RMSNormImpl(int64_t dim, double eps_, const ParamInit& init) : eps(eps_) {
  weight = register_parameter("weight", init.make({dim}, 1.0));
}

EmbeddingImpl::EmbeddingImpl(int64_t vocab, int64_t dim, const ParamInit& init) {
  weight = register_parameter("weight", init.make({vocab, dim}, 0.0));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  const auto dtype = x.scalar_type();
  torch::Tensor xf = dtype == torch::kFloat ? x : x.to(torch::kFloat);
  torch::Tensor variance = (xf * xf).mean(-1, /*keepdim=*/true);  // [.., 1]
  torch::Tensor normed = xf * torch::rsqrt(variance + eps);
  return weight * (dtype == torch::kFloat ? normed : normed.to(dtype));
}

// ---- rotary embedding -------------------------------------------------------------------------

torch::Tensor rope_inv_freq(const ModelConfig& cfg) {
  const int64_t dim = cfg.head_dim;
  auto exponent = torch::arange(0, dim, 2, torch::kLong).to(torch::kFloat) / dim;  // [dim/2]
  torch::Tensor inv_freq = torch::pow(cfg.rope_theta, exponent).reciprocal();      // float32
  if (cfg.rope_scaling.type != "llama3") return inv_freq;
  // Llama 3.1: keep high frequencies, divide low ones by `factor`, interpolate in between.
  const auto& rs = cfg.rope_scaling;
  const double old_len = static_cast<double>(rs.original_max_position_embeddings);
  const double low_freq_wavelen = old_len / rs.low_freq_factor;
  const double high_freq_wavelen = old_len / rs.high_freq_factor;
  torch::Tensor wavelen = inv_freq.reciprocal() * (2 * M_PI);
  torch::Tensor scaled = torch::where(wavelen > low_freq_wavelen, inv_freq / rs.factor, inv_freq);
  torch::Tensor smooth = (wavelen.reciprocal() * old_len - rs.low_freq_factor) /
                         (rs.high_freq_factor - rs.low_freq_factor);
  torch::Tensor smoothed = (1 - smooth) * scaled / rs.factor + smooth * scaled;
  torch::Tensor is_medium = (wavelen >= high_freq_wavelen).logical_and(wavelen <= low_freq_wavelen);
  return torch::where(is_medium, smoothed, scaled);
}

Rope rope_tables(const torch::Tensor& inv_freq, const torch::Tensor& position_ids,
                 torch::ScalarType dtype) {
  // freqs[b, t, i] = pos[b, t] * inv_freq[i], a single float32 product as in HF's outer matmul.
  torch::Tensor freqs = position_ids.to(torch::kFloat).unsqueeze(-1) *
                        inv_freq.to(position_ids.device()).view({1, 1, -1});  // [B, T, D/2]
  torch::Tensor emb = torch::cat({freqs, freqs}, -1).unsqueeze(2);            // [B, T, 1, D]
  return {emb.cos().to(dtype), emb.sin().to(dtype)};
}

namespace {
// x [.., D] -> cat(-x[.., D/2:], x[.., :D/2])
torch::Tensor rotate_half(const torch::Tensor& x) {
  const int64_t h = x.size(-1) / 2;
  return torch::cat({-x.narrow(-1, h, h), x.narrow(-1, 0, h)}, -1);
}
torch::Tensor apply_rope(const torch::Tensor& x, const Rope& r) {
  return x * r.cos + rotate_half(x) * r.sin;
}
}  // namespace

// ---- attention --------------------------------------------------------------------------------

AttentionImpl::AttentionImpl(const ModelConfig& cfg, int64_t layer_idx, const ParamInit& init)
    : layer_idx_(layer_idx),
      heads_(cfg.num_attention_heads),
      kv_heads_(cfg.num_key_value_heads),
      head_dim_(cfg.head_dim),
      scale_(1.0 / std::sqrt(static_cast<double>(cfg.head_dim))) {
  const int64_t H = cfg.hidden_size, q_out = heads_ * head_dim_, kv_out = kv_heads_ * head_dim_;
  const bool b = cfg.attention_bias;
  q_proj = register_module("q_proj", Linear(H, q_out, b, init));
  k_proj = register_module("k_proj", Linear(H, kv_out, b, init));
  v_proj = register_module("v_proj", Linear(H, kv_out, b, init));
  o_proj = register_module("o_proj", Linear(q_out, H, b && cfg.arch != Arch::Qwen2, init));
  if (cfg.qk_norm) {
    q_norm = register_module("q_norm", RMSNorm(head_dim_, cfg.rms_norm_eps, init));
    k_norm = register_module("k_norm", RMSNorm(head_dim_, cfg.rms_norm_eps, init));
  }
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const AttentionContext& ctx) {
  const int64_t B = x.size(0), T = x.size(1), D = head_dim_, rep = heads_ / kv_heads_;
  torch::Tensor q = q_proj(x).view({B, T, heads_, D});     // [B, T, nh, D]
  torch::Tensor k = k_proj(x).view({B, T, kv_heads_, D});  // [B, T, kvh, D]
  torch::Tensor v = v_proj(x).view({B, T, kv_heads_, D});
  if (q_norm) {
    q = q_norm(q);
    k = k_norm(k);
  }
  q = apply_rope(q, ctx.rope).transpose(1, 2).contiguous();  // [B, nh, T, D]
  k = apply_rope(k, ctx.rope).transpose(1, 2).contiguous();  // [B, kvh, T, D]
  v = v.transpose(1, 2).contiguous();                        // [B, kvh, T, D]
  if (ctx.cache) std::tie(k, v) = ctx.cache->append(layer_idx_, k, v);  // [B, kvh, S, D], in place
  const int64_t S = k.size(2);
  torch::Tensor out;  // [B, nh, T, D]
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 5)
  if (!ctx.attentions) {
    // Fused attention with grouped-query heads: k/v are not repeated.
    c10::optional<torch::Tensor> mask;
    if (ctx.mask.defined()) mask = ctx.mask;
    out = at::scaled_dot_product_attention(q, k, v, mask, 0.0, ctx.causal_only && !ctx.mask.defined(),
                                           c10::nullopt, /*enable_gqa=*/rep > 1);
  } else
#elif TORCH_VERSION_MAJOR >= 2
  if (!ctx.attentions) {
    // Fused attention where libtorch has it; before 2.5 k/v are repeated to the query heads.
    torch::Tensor kr = rep == 1 ? k : k.unsqueeze(2).expand({B, kv_heads_, rep, S, D}).reshape({B, heads_, S, D});
    torch::Tensor vr = rep == 1 ? v : v.unsqueeze(2).expand({B, kv_heads_, rep, S, D}).reshape({B, heads_, S, D});
    c10::optional<torch::Tensor> mask;
    if (ctx.mask.defined()) mask = ctx.mask;
    out = at::scaled_dot_product_attention(q, kr, vr, mask, 0.0, ctx.causal_only && !ctx.mask.defined());
  } else
#endif
  {
    // Math path. Grouped-query attention without copying k/v: the `rep` query heads that share a
    // kv head are stacked along the row axis, q viewed as [B, kvh, rep*T, D].
    torch::Tensor scores = torch::matmul(q.view({B, kv_heads_, rep * T, D}), k.transpose(2, 3));
    scores.mul_(scale_);                                     // [B, kvh, rep*T, S]
    const torch::Tensor& mask = ctx.mask;  // the body always builds it on this path
    if (mask.defined())
      scores.view({B, kv_heads_, rep, T, S}).add_(mask.view({mask.size(0), 1, 1, T, S}));
    torch::Tensor probs = torch::softmax(scores, -1, torch::kFloat).to(q.scalar_type());
    if (ctx.attentions) ctx.attentions->push_back(probs.view({B, heads_, T, S}));
    out = torch::matmul(probs, v).view({B, heads_, T, D});
  }
  out = out.transpose(1, 2).reshape({B, T, heads_ * D});  // [B, T, nh*D]
  return o_proj(out);
}

// ---- MLP and layer ----------------------------------------------------------------------------

MlpImpl::MlpImpl(const ModelConfig& cfg, const ParamInit& init) {
  const int64_t H = cfg.hidden_size, I = cfg.intermediate_size;
  gate_proj = register_module("gate_proj", Linear(H, I, cfg.mlp_bias, init));
  up_proj = register_module("up_proj", Linear(H, I, cfg.mlp_bias, init));
  down_proj = register_module("down_proj", Linear(I, H, cfg.mlp_bias, init));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  return down_proj(torch::silu(gate_proj(x)) * up_proj(x));  // [B, T, I] -> [B, T, H]
}

DecoderLayerImpl::DecoderLayerImpl(const ModelConfig& cfg, int64_t layer_idx, const ParamInit& init) {
  // Registration order = HF's state_dict order.
  self_attn = register_module("self_attn", Attention(cfg, layer_idx, init));
  mlp = register_module("mlp", Mlp(cfg, init));
  input_layernorm = register_module("input_layernorm", RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, init));
  post_attention_layernorm =
      register_module("post_attention_layernorm", RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, init));
}

torch::Tensor DecoderLayerImpl::forward(const torch::Tensor& x, const AttentionContext& ctx) {
  torch::Tensor h = x + self_attn(input_layernorm(x), ctx);  // [B, T, H]
  return h + mlp(post_attention_layernorm(h));
}

// ---- gradient checkpointing -------------------------------------------------------------------

namespace {
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The generator that dropout on `x` draws from.
at::Generator rng_generator(const torch::Tensor& x) { return at::globalContext().defaultGenerator(x.device()); }

// Runs a layer without recording its graph; backward recomputes the layer with grad enabled and
// back-propagates through the recomputation into the input and the layer's parameters.
struct CheckpointedLayer : public torch::autograd::Function<CheckpointedLayer> {
  static torch::Tensor forward(AutogradContext* actx, torch::Tensor x, torch::TensorList params,
                               DecoderLayerImpl* layer, const AttentionContext* ctx, LayerParamHooks* hooks,
                               int64_t index) {
    actx->save_for_backward({x});
    actx->saved_data["cos"] = ctx->rope.cos;
    actx->saved_data["sin"] = ctx->rope.sin;
    actx->saved_data["has_mask"] = ctx->mask.defined();
    if (ctx->mask.defined()) actx->saved_data["mask"] = ctx->mask;
    actx->saved_data["causal_only"] = ctx->causal_only;
    // The layer is owned by the model, which outlives the graph built on its parameters.
    actx->saved_data["layer"] = reinterpret_cast<int64_t>(layer);
    actx->saved_data["num_params"] = static_cast<int64_t>(params.size());
    actx->saved_data["hooks"] = reinterpret_cast<int64_t>(hooks);
    actx->saved_data["index"] = index;
    // LoRA dropout draws random masks: the recompute must draw the same ones (PyTorch's checkpoint
    // restores the RNG state likewise).
    const bool random = layer->draws_random();
    actx->saved_data["random"] = random;
    if (random) actx->saved_data["rng"] = rng_generator(x).get_state();
    torch::NoGradGuard no_grad;
    if (hooks) hooks->acquire(index);
    torch::Tensor out = layer->forward(x, *ctx);
    if (hooks) hooks->release(index);
    return out;
  }

  static variable_list backward(AutogradContext* actx, variable_list grad_out) {
    torch::Tensor x = actx->get_saved_variables()[0];
    auto* layer = reinterpret_cast<DecoderLayerImpl*>(actx->saved_data["layer"].toInt());
    AttentionContext ctx;
    ctx.rope = {actx->saved_data["cos"].toTensor(), actx->saved_data["sin"].toTensor()};
    if (actx->saved_data["has_mask"].toBool()) ctx.mask = actx->saved_data["mask"].toTensor();
    ctx.causal_only = actx->saved_data["causal_only"].toBool();
    const int64_t num_params = actx->saved_data["num_params"].toInt();
    auto* hooks = reinterpret_cast<LayerParamHooks*>(actx->saved_data["hooks"].toInt());
    const int64_t index = actx->saved_data["index"].toInt();
    if (hooks) hooks->acquire(index);
    auto params = layer->parameters();  // same order as at forward time

    torch::AutoGradMode grad_on(true);
    torch::Tensor xd = x.detach().requires_grad_(x.requires_grad());
    torch::Tensor out;
    if (actx->saved_data["random"].toBool()) {
      auto gen = rng_generator(x);
      const auto now = gen.get_state();
      gen.set_state(actx->saved_data["rng"].toTensor());
      out = layer->forward(xd, ctx);
      gen.set_state(now);
    } else {
      out = layer->forward(xd, ctx);
    }
    std::vector<torch::Tensor> wrt;
    if (xd.requires_grad()) wrt.push_back(xd);
    for (const auto& p : params)
      if (p.requires_grad()) wrt.push_back(p);
    variable_list grads = torch::autograd::grad({out}, wrt, {grad_out[0]}, /*retain_graph=*/false,
                                                /*create_graph=*/false, /*allow_unused=*/true);
    variable_list result;
    size_t g = 0;
    result.push_back(xd.requires_grad() ? grads[g++] : torch::Tensor());
    std::vector<torch::Tensor> param_grads;
    for (const auto& p : params) param_grads.push_back(p.requires_grad() ? grads[g++] : torch::Tensor());
    if (hooks) {  // sharded parameters: their gradients go to the hooks, not to .grad
      out = torch::Tensor();
      grads.clear();
      hooks->gradients(index, param_grads);
      hooks->release(index);
    } else {
      for (int64_t i = 0; i < num_params; ++i) result.push_back(param_grads[static_cast<size_t>(i)]);
    }
    result.push_back(torch::Tensor());  // layer
    result.push_back(torch::Tensor());  // ctx
    result.push_back(torch::Tensor());  // hooks
    result.push_back(torch::Tensor());  // index
    return result;
  }
};
}  // namespace

bool DecoderLayerImpl::draws_random() const {
  if (!is_training()) return false;
  for (const auto& m : modules(/*include_self=*/false))
    if (auto lin = std::dynamic_pointer_cast<LinearImpl>(m); lin && lin->has_lora() && lin->lora_options().dropout > 0)
      return true;
  return false;
}

torch::Tensor DecoderLayerImpl::forward_checkpointed(const torch::Tensor& x, const AttentionContext& ctx,
                                                     LayerParamHooks* hooks, int64_t index) {
  // Sharded parameters are not inputs of the node: their gradients go to the hooks, and an edge
  // recorded now would carry the released (empty) shape into the recompute's graph.
  std::vector<torch::Tensor> params;
  if (!hooks) params = parameters();
  return CheckpointedLayer::apply(x, torch::TensorList(params), this, &ctx, hooks, index);
}

}  // namespace safekey::model
