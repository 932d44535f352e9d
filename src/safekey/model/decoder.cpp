// The decoder model: embeddings -> N pre-norm layers -> final RMSNorm -> LM head. Module tree =
// HF parameter names: "model.embed_tokens", "model.layers.{i}.*", "model.norm", "lm_head".
#include "safekey/model/decoder.h"

#include <torch/version.h>

#include <limits>

#include "safekey/model/layers.h"
#include "safekey/util/error.h"

namespace safekey::model {

// "model": the transformer body (HF's Qwen2Model / LlamaModel / Qwen3Model).
class BodyImpl : public torch::nn::Module {
 public:
  BodyImpl(const ModelConfig& cfg, const ParamInit& whole, const ParamInit& layer_init) {
    embed_tokens = register_module("embed_tokens", Embedding(cfg.vocab_size, cfg.hidden_size, whole));
    layers = register_module("layers", torch::nn::ModuleList());
    for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) {
      DecoderLayer l(cfg, i, layer_init);
      layers->push_back(l);
      layer_ptrs.push_back(l.ptr());
    }
    norm = register_module("norm", RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, whole));
  }
  Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  std::vector<std::shared_ptr<DecoderLayerImpl>> layer_ptrs;
  RMSNorm norm{nullptr};
};

struct DecoderModelImpl::Impl {
  std::shared_ptr<BodyImpl> body;
  Linear lm_head{nullptr};  // undefined when tied
  torch::Tensor inv_freq;   // [head_dim/2] float32, CPU (moved per forward; tiny)
};

DecoderModelImpl::DecoderModelImpl(const ModelConfig& cfg, const ModelInit& init)
    : cfg_(cfg), impl_(std::make_shared<Impl>()) {
  const ParamInit whole{torch::TensorOptions().dtype(init.dtype).device(init.device), init.defer_all};
  const ParamInit layer_init{whole.options, init.defer_layers || init.defer_all};
  impl_->body = register_module("model", std::make_shared<BodyImpl>(cfg, whole, layer_init));
  if (!cfg.tie_word_embeddings)
    impl_->lm_head = register_module("lm_head", Linear(cfg.hidden_size, cfg.vocab_size, false, whole));
  impl_->inv_freq = rope_inv_freq(cfg);
}

torch::Tensor DecoderModelImpl::lm_head_logits(const torch::Tensor& hidden) {
  if (impl_->lm_head) return impl_->lm_head(hidden);
  return torch::linear(hidden, impl_->body->embed_tokens->weight);  // tied: h . E^T
}

std::vector<std::pair<std::string, torch::Tensor>> DecoderModelImpl::hf_named_parameters() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& kv : named_parameters(/*recurse=*/true)) {
    const std::string& name = kv.key();  // adapters (adapter.h) are not the checkpoint's tensors
    if (name.find(".lora_A.") != std::string::npos || name.find(".lora_B.") != std::string::npos) continue;
    out.emplace_back(name, kv.value());
  }
  return out;
}

namespace {

double lowest_of(torch::ScalarType dtype) {
  return dtype == torch::kFloat      ? std::numeric_limits<float>::lowest()
         : dtype == torch::kDouble   ? std::numeric_limits<double>::lowest()
         : dtype == torch::kBFloat16 ? static_cast<double>(std::numeric_limits<c10::BFloat16>::lowest())
                                     : static_cast<double>(std::numeric_limits<c10::Half>::lowest());
}

// Additive attention mask [Bm, 1, T, S] in `dtype`: 0 where query i (absolute index past + i) may
// see key j (j <= past + i and key_mask[b, j] != 0), finfo(dtype).min elsewhere. A query row with
// every key hidden then has equal scores everywhere and a uniform softmax: finite, as in HF eager.
torch::Tensor build_mask(int64_t T, int64_t S, const torch::Tensor& key_mask, torch::ScalarType dtype,
                         torch::Device device) {
  const double lowest = lowest_of(dtype);
  auto opts = torch::TensorOptions().dtype(dtype).device(device);
  // Causal part [T, S]: hidden where j > (S - T) + i.
  torch::Tensor mask = torch::full({T, S}, lowest, opts).triu_(S - T + 1).view({1, 1, T, S});
  if (!key_mask.defined()) return mask;
  torch::Tensor hidden_keys = key_mask.to(device).eq(0).view({key_mask.size(0), 1, 1, S});  // [B,1,1,S]
  return mask.masked_fill(hidden_keys, lowest);  // [B, 1, T, S]
}

// The mask of rows whose cached lengths differ: query i of row b (at column lens[b] + i) sees keys
// j <= lens[b] + i, and only those with key_mask[b, j] != 0 when a key mask is given.
torch::Tensor build_ragged_mask(int64_t T, int64_t S, const torch::Tensor& lens, const torch::Tensor& key_mask,
                                torch::ScalarType dtype, torch::Device device) {
  const int64_t B = lens.size(0);
  auto lopts = torch::TensorOptions().dtype(torch::kLong).device(device);
  torch::Tensor last = lens.to(device).view({B, 1, 1, 1}) + torch::arange(T, lopts).view({1, 1, T, 1});
  torch::Tensor hidden = torch::arange(S, lopts).view({1, 1, 1, S}).gt(last);  // [B, 1, T, S]
  if (key_mask.defined()) hidden = hidden.logical_or(key_mask.to(device).eq(0).view({B, 1, 1, S}));
  return torch::zeros({B, 1, T, S}, torch::TensorOptions().dtype(dtype).device(device))
      .masked_fill_(hidden, lowest_of(dtype));
}

}  // namespace

ForwardOutput DecoderModelImpl::forward(const ForwardInput& in) {
  BodyImpl& body = *impl_->body;
  const torch::Tensor& ids = in.input_ids;
  SK_CHECK(ids.defined() && ids.dim() == 2, "forward: input_ids must be [B, T], got ",
           ids.defined() ? ids.sizes() : torch::IntArrayRef{});
  const int64_t B = ids.size(0), T = ids.size(1);
  SK_CHECK(T > 0 && B > 0, "forward: empty input_ids ", ids.sizes());
  if (ids.device().is_cpu()) {
    int64_t lo = ids.min().item<int64_t>(), hi = ids.max().item<int64_t>();
    SK_CHECK(lo >= 0 && hi < cfg_.vocab_size, "forward: token id ", lo < 0 ? lo : hi,
             " is outside the vocabulary [0, ", cfg_.vocab_size, ")");
  }
  // With a cache: every row appends at its slot's length (kv_cache.h); S = visible key columns.
  const int64_t S = in.cache ? in.cache->begin(in.cache_slots, B, T) : T;
  const bool ragged = in.cache && !in.cache->step_uniform();
  const int64_t past = S - T;  // the rows' common cache length when not ragged
  torch::Tensor lens;          // ragged: [B] cache length of each row before this forward
  if (ragged) lens = in.cache->step_lengths(ids.device());
  torch::Tensor pos = in.position_ids;
  if (!pos.defined()) {
    pos = torch::arange(T, torch::TensorOptions().dtype(torch::kLong).device(ids.device())).unsqueeze(0);
    pos = ragged ? pos + lens.unsqueeze(1) : (pos + past).expand({B, T});
  } else {
    SK_CHECK(pos.dim() == 2 && pos.size(0) == B && pos.size(1) == T,
             "forward: position_ids must be [B, T] = [", B, ", ", T, "], got ", pos.sizes());
  }
  if (in.key_mask.defined())
    SK_CHECK(in.key_mask.dim() == 2 && in.key_mask.size(0) == B && in.key_mask.size(1) == S,
             "forward: key_mask must be [B, cache + T] = [", B, ", ", S, "], got ",
             in.key_mask.sizes());

  torch::Tensor x = body.embed_tokens(ids);  // [B, T, H]
  const auto dtype = x.scalar_type();
  AttentionContext ctx;
  ctx.rope = rope_tables(impl_->inv_freq, pos, dtype);
  ctx.cache = in.cache;
  if (ragged) {
    ctx.mask = build_ragged_mask(T, S, lens, in.key_mask, dtype, x.device());
  } else if (in.key_mask.defined() || T > 1) {
#if TORCH_VERSION_MAJOR >= 2
    if (!in.key_mask.defined() && past == 0 && !in.output_attentions)
      ctx.causal_only = true;  // fused causal attention, no mask tensor
    else
#endif
      ctx.mask = build_mask(T, S, in.key_mask, dtype, x.device());
  }
  ForwardOutput out;
  if (in.output_attentions) ctx.attentions = &out.attentions;
  const bool ckpt = grad_ckpt_ && torch::GradMode::is_enabled() && !in.cache && !in.output_attentions;
  if (layer_hooks_) {
    SK_CHECK(!in.cache && !in.output_attentions, "forward: sharded (ZeRO-3) layers support neither a KV cache nor ",
             "attention outputs");
    for (size_t i = 0; i < body.layer_ptrs.size(); ++i)
      x = body.layer_ptrs[i]->forward_checkpointed(x, ctx, layer_hooks_, static_cast<int64_t>(i));
  } else {
    for (auto& layer : body.layer_ptrs) x = ckpt ? layer->forward_checkpointed(x, ctx) : layer->forward(x, ctx);
  }
  if (in.cache) in.cache->end();
  out.hidden = body.norm(x);  // [B, T, H]
  if (in.compute_logits) {
    if (in.logits_positions.defined()) {
      const auto& lp = in.logits_positions;  // [B, P]
      SK_CHECK(lp.dim() == 2 && lp.size(0) == B, "forward: logits_positions must be [B, P]");
      torch::Tensor idx = lp.to(out.hidden.device()).unsqueeze(-1).expand({B, lp.size(1), out.hidden.size(2)});
      out.logits = lm_head_logits(out.hidden.gather(1, idx));  // [B, P, V]
    } else {
      out.logits = lm_head_logits(out.hidden);  // [B, T, V]
    }
  }
  return out;
}

}  // namespace safekey::model
