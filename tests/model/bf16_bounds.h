// Per-op error bounds for the bfloat16 decoder, derived from the rounding of each op's inputs and
// results.
//
// Each op of a bfloat16 module is compared with a float64 reference computed HERE from the op's
// definition and weights, so a bug that the library's float32 and bfloat16 paths share (a missing
// 1/sqrt(head_dim), a transposed weight, a norm without its weight) shows as well. The inputs of a
// bf16 op are bf16 numbers: the reference takes exactly those values (the float32 input rounded to
// bf16, or the bf16 module's own intermediate results: q, k, v from its projections, the attention
// probabilities it reports, the MLP's gate and up outputs). The bound is then what the op's own
// arithmetic adds, elementwise:
//
//   u = 2^-8, the unit roundoff of bfloat16 (8 significant bits): fl16(a) = a(1 + d), |d| <= u.
//   Accumulation is in float32 (libtorch's CPU bf16 gemm and cuBLAS accumulate in float32): a
//   k-term dot product errs by at most gamma_k = k 2^-24 / (1 - k 2^-24) times sum |a_i||b_i|.
//
//   Linear y = x W^T + b (x, W, b bf16):  E = gamma_k (|x| |W|^T),  |y16 - y| <= E + 2u (|y| + E)
//     (the result is rounded to bf16; the bias add may round once more). An input that carries an
//     error dx from an earlier step of the same op adds |W| dx (1 + u).
//   RMSNorm y = w * x / r (computed in float32, the normalised value rounded to bf16, the product
//     with w rounded again):  |y16 - y| <= (2.1u + 1e-6) |y|;  an input error dx adds
//     |w| (dx / r + |x| rms(dx) / (r (r - rms(dx)))), as |r(x + dx) - r(x)| <= rms(dx).
//   Attention probabilities P = softmax(scale q' k'^T + causal mask), q' = q cos + rot(q) sin with
//     bf16 tables: two rounded products and a rounded sum give dq' <= u(1+u)(|q||cos| + |rot q||sin|)
//     + u|q'|; the scores then err by scale (dq'|k'|^T + |q'| dk'^T + dq' dk'^T) + gamma_D scale
//     |q'||k'|^T, and the bf16 matmul result and its multiplication by scale round twice
//     (2u(|s| + ds)). If every score of a row moves by at most D_i, each probability moves by a
//     factor in [e^{-2 D_i}, e^{2 D_i}], so |dP| <= P (e^{2 D_i} - 1) + u P e^{2 D_i} (rounding P).
//   Attention output o_proj(P v) from the module's own P and v: the P v product gives
//     gamma_T P|v| + u(|Pv| + that), then o_proj as a Linear with that input error.
//   MLP down(silu(g) * up) from the module's own g and up: silu is computed in float32 and rounded
//     (u|silu(g)|), the product rounded (u|s up|): ds |up| + u|s up|, then down_proj as a Linear with
//     that input error.
//
// The observed errors are 10-80% of these bounds (printed), and the same checks fail on a
// transposed weight and on attention without its scale (the tests show both).
#pragma once
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "safekey/model/config.h"
#include "safekey/model/layers.h"

namespace safekey::test::bf16 {

constexpr double kU = 1.0 / 256.0;  // bfloat16 unit roundoff 2^-8

inline double gamma32(int64_t k) {
  const double ku = static_cast<double>(k) * std::ldexp(1.0, -24);
  return ku / (1.0 - ku);
}

// Result of one op's comparison: how many elements exceed the bound and the worst |diff| / bound.
struct OpCheck {
  std::string what;
  int64_t violations = 0;
  double worst_ratio = 0;  // max |got - ref| / bound
  double max_diff = 0;
};

inline torch::Tensor d64(const torch::Tensor& t) { return t.detach().to(torch::kCPU, torch::kDouble); }
inline torch::Tensor r16(const torch::Tensor& t) { return d64(t.to(torch::kBFloat16)); }  // rounded to bf16

inline OpCheck compare(const std::string& what, const torch::Tensor& got, const torch::Tensor& ref,
                       const torch::Tensor& bound) {
  OpCheck c;
  c.what = what;
  const torch::Tensor diff = (d64(got) - ref).abs();
  c.violations = (diff > bound).sum().item<int64_t>();
  c.worst_ratio = (diff / bound.clamp_min(1e-300)).max().item<double>();
  c.max_diff = diff.max().item<double>();
  std::printf("  %-34s max|diff| %.3g, worst |diff|/bound %.3f, %lld over\n", what.c_str(), c.max_diff,
              c.worst_ratio, static_cast<long long>(c.violations));
  return c;
}

// Linear: reference, and the bound for a bf16 evaluation on inputs with propagated error `dx`
// (undefined = exact float32 inputs). x [.., in], W [out, in].
struct Bounded {
  torch::Tensor ref;    // float64 reference
  torch::Tensor bound;  // elementwise bound on |bf16 result - ref|
};

// Linear on x [.., in] with W [out, in] and b: x, W and b are taken as the bf16 values the op sees
// (rounded here), unless `dx` is given: then x is an exact intermediate value of the same op and dx
// bounds how far the op's actual (bf16) input is from it.
inline Bounded linear_bound(const torch::Tensor& x, const torch::Tensor& W, const torch::Tensor& b,
                            const torch::Tensor& dx = {}) {
  const torch::Tensor x64 = dx.defined() ? d64(x) : r16(x), w64 = r16(W);
  Bounded o;
  o.ref = torch::matmul(x64, w64.t());
  if (b.defined()) o.ref = o.ref + r16(b);
  const double u = kU;
  torch::Tensor E = gamma32(W.size(1)) * torch::matmul(x64.abs(), w64.abs().t());  // float32 sum
  if (dx.defined()) E = E + (1 + u) * torch::matmul(dx, w64.abs().t());
  o.bound = E + 2 * u * (o.ref.abs() + E);
  return o;
}

// RMSNorm over the last axis, with input error dx (undefined = exact).
inline Bounded rmsnorm_bound(const torch::Tensor& x, const torch::Tensor& w, double eps, const torch::Tensor& dx = {}) {
  const torch::Tensor x64 = dx.defined() ? d64(x) : r16(x), w64 = r16(w);
  const torch::Tensor r = (x64.pow(2).mean(-1, true) + eps).sqrt();  // [.., 1]
  Bounded o;
  o.ref = w64 * x64 / r;
  o.bound = (2.1 * kU + 1e-6) * o.ref.abs();
  if (dx.defined()) {
    const torch::Tensor rms_dx = dx.pow(2).mean(-1, true).sqrt();
    o.bound = o.bound + 1.01 * w64.abs() * (dx / r + x64.abs() * rms_dx / (r * (r - rms_dx).clamp_min(1e-300)));
  }
  return o;
}

inline torch::Tensor rotate_half(const torch::Tensor& x) {
  const int64_t h = x.size(-1) / 2;
  return torch::cat({-x.narrow(-1, h, h), x.narrow(-1, 0, h)}, -1);
}

// Attention probabilities [nh, T, T] for bf16 q [T, nh, D] and k [T, kvh, D] (after q/k norms),
// positions 0..T-1, causal; `scale` is the softmax scale the reference uses.
inline Bounded probs_bound(const model::ModelConfig& cfg, const torch::Tensor& q16, const torch::Tensor& k16,
                           double scale) {
  const double u = kU;
  const int64_t T = q16.size(0), rep = cfg.num_attention_heads / cfg.num_key_value_heads, D = cfg.head_dim;
  const torch::Tensor pos = torch::arange(T, torch::kLong).view({1, T});
  const model::Rope rope = model::rope_tables(model::rope_inv_freq(cfg), pos, torch::kBFloat16);
  const torch::Tensor c = d64(rope.cos)[0], s = d64(rope.sin)[0];  // [T, 1, D], the bf16 tables
  auto rope_apply = [&](const torch::Tensor& t, torch::Tensor* out, torch::Tensor* dout) {
    *out = t * c + rotate_half(t) * s;
    *dout = u * (1 + u) * (t.abs() * c.abs() + rotate_half(t).abs() * s.abs()) + u * out->abs();
  };
  torch::Tensor qr, dqr, kr, dkr;
  rope_apply(d64(q16), &qr, &dqr);
  rope_apply(d64(k16), &kr, &dkr);
  auto by_head = [&](const torch::Tensor& t) { return t.permute({1, 0, 2}).repeat_interleave(rep, 0); };  // [nh, T, D]
  const torch::Tensor Q = qr.permute({1, 0, 2}), dQ = dqr.permute({1, 0, 2});
  const torch::Tensor K = by_head(kr), dK = by_head(dkr);
  torch::Tensor S = scale * torch::matmul(Q, K.transpose(1, 2));  // [nh, T, T]
  torch::Tensor dS = scale * (torch::matmul(dQ, K.abs().transpose(1, 2)) + torch::matmul(Q.abs(), dK.transpose(1, 2)) +
                              torch::matmul(dQ, dK.transpose(1, 2))) +
                     gamma32(D) * scale * torch::matmul(Q.abs(), K.abs().transpose(1, 2));
  dS = dS + 2 * u * (1 + u) * (S.abs() + dS);
  const torch::Tensor hidden = torch::ones({T, T}, torch::kBool).tril().logical_not();
  S = S.masked_fill(hidden, -std::numeric_limits<double>::infinity());
  Bounded o;
  o.ref = torch::softmax(S, -1);
  const torch::Tensor grow = (2 * dS.masked_fill(hidden, 0).amax(-1, true)).exp();  // [nh, T, 1]
  o.bound = o.ref * (grow - 1) + u * o.ref * grow;
  return o;
}

// The attention block, op by op, on x [1, T, H]: the projections, the q/k norms (Qwen3), the
// probabilities the module reports, and the output from the module's own probabilities and v.
// `scale` = 0: the right 1/sqrt(head_dim).
inline std::vector<OpCheck> check_attention(model::AttentionImpl& a16, const model::ModelConfig& cfg,
                                            const torch::Tensor& x, const std::string& name, double scale = 0) {
  torch::NoGradGuard ng;
  const double u = kU;
  if (scale <= 0) scale = 1.0 / std::sqrt(static_cast<double>(cfg.head_dim));
  const torch::Device dev = a16.q_proj->weight.device();
  const int64_t T = x.size(1), nh = cfg.num_attention_heads, kvh = cfg.num_key_value_heads, D = cfg.head_dim;
  const torch::Tensor x16 = x.to(dev, torch::kBFloat16);  // [1, T, H]
  std::vector<OpCheck> out;
  auto proj = [&](model::LinearImpl& l, const std::string& what) {
    const torch::Tensor y16 = l.forward(x16);
    const Bounded b = linear_bound(x, l.weight, l.bias);
    out.push_back(compare(name + " " + what, y16, b.ref, b.bound));
    return y16;
  };
  torch::Tensor q16 = proj(*a16.q_proj, "q_proj").view({T, nh, D});
  torch::Tensor k16 = proj(*a16.k_proj, "k_proj").view({T, kvh, D});
  const torch::Tensor v16 = proj(*a16.v_proj, "v_proj").view({T, kvh, D});
  if (cfg.qk_norm) {
    const Bounded qn = rmsnorm_bound(q16, a16.q_norm->weight, cfg.rms_norm_eps);
    const Bounded kn = rmsnorm_bound(k16, a16.k_norm->weight, cfg.rms_norm_eps);
    q16 = a16.q_norm->forward(q16);
    k16 = a16.k_norm->forward(k16);
    out.push_back(compare(name + " q_norm", q16, qn.ref, qn.bound));
    out.push_back(compare(name + " k_norm", k16, kn.ref, kn.bound));
  }
  // The module itself, reporting its probabilities (the explicit softmax path).
  const torch::Tensor pos = torch::arange(T, torch::kLong).view({1, T}).to(dev);
  std::vector<torch::Tensor> probs;
  model::AttentionContext ctx;
  ctx.rope = model::rope_tables(model::rope_inv_freq(cfg), pos, torch::kBFloat16);
  ctx.mask = torch::full({T, T}, static_cast<double>(std::numeric_limits<c10::BFloat16>::lowest()))
                 .triu(1)
                 .to(dev, torch::kBFloat16)
                 .view({1, 1, T, T});
  ctx.attentions = &probs;
  const torch::Tensor y16 = a16.forward(x16, ctx);  // [1, T, H]
  const Bounded pb = probs_bound(cfg, q16, k16, scale);
  out.push_back(compare(name + " attention probs", probs.at(0)[0], pb.ref, pb.bound));
  // Output from the module's own P and v.
  const int64_t rep = nh / kvh;
  const torch::Tensor P = d64(probs.at(0)[0]), V = d64(v16).permute({1, 0, 2}).repeat_interleave(rep, 0);
  const torch::Tensor O = torch::matmul(P, V);  // [nh, T, D]
  torch::Tensor dO = gamma32(T) * torch::matmul(P, V.abs());
  dO = dO + u * (O.abs() + dO);
  const Bounded ob = linear_bound(O.permute({1, 0, 2}).reshape({T, nh * D}), a16.o_proj->weight, a16.o_proj->bias,
                                  dO.permute({1, 0, 2}).reshape({T, nh * D}));
  out.push_back(compare(name + " attention output", y16[0], ob.ref, ob.bound));
  return out;
}

// The MLP on x [.., H], op by op: gate and up projections, then the output from the module's own
// gate and up results.
inline std::vector<OpCheck> check_mlp(model::MlpImpl& m16, const torch::Tensor& x, const std::string& name) {
  torch::NoGradGuard ng;
  const double u = kU;
  const torch::Tensor x16 = x.to(m16.gate_proj->weight.device(), torch::kBFloat16);
  std::vector<OpCheck> out;
  const torch::Tensor g16 = m16.gate_proj->forward(x16), up16 = m16.up_proj->forward(x16);
  const Bounded gb = linear_bound(x, m16.gate_proj->weight, m16.gate_proj->bias);
  const Bounded ub = linear_bound(x, m16.up_proj->weight, m16.up_proj->bias);
  out.push_back(compare(name + " gate_proj", g16, gb.ref, gb.bound));
  out.push_back(compare(name + " up_proj", up16, ub.ref, ub.bound));
  const torch::Tensor g = d64(g16), up = d64(up16);
  const torch::Tensor s = g * torch::sigmoid(g);  // silu
  const torch::Tensor ds = (u + 1e-6) * s.abs();
  const torch::Tensor prod = s * up;
  torch::Tensor dprod = ds * up.abs();
  dprod = dprod + u * (prod.abs() + dprod);
  const Bounded db = linear_bound(prod, m16.down_proj->weight, m16.down_proj->bias, dprod);
  out.push_back(compare(name + " mlp output", m16.forward(x16), db.ref, db.bound));
  return out;
}

// The submodule registered under `name` ("model.layers.0", "model.norm", "lm_head"), or nullptr.
template <class M>
std::shared_ptr<M> module_at(torch::nn::Module& m, const std::string& name) {
  for (const auto& kv : m.named_modules())
    if (kv.key() == name) return std::dynamic_pointer_cast<M>(kv.value());
  return nullptr;
}

// Every op of the bf16 decoder layer `l16` on the float32 input x [1, T, H]: the two norms, the
// attention block and the MLP (both on the first norm's float32 result).
inline std::vector<OpCheck> check_layer(model::DecoderLayerImpl& l16, const model::ModelConfig& cfg,
                                        const torch::Tensor& x, const std::string& name) {
  torch::NoGradGuard ng;
  const torch::Device dev = l16.input_layernorm->weight.device();
  std::vector<OpCheck> out;
  for (auto* norm : {&l16.input_layernorm, &l16.post_attention_layernorm}) {
    const Bounded nb = rmsnorm_bound(x, (*norm)->weight, cfg.rms_norm_eps);
    out.push_back(compare(name + (norm == &l16.input_layernorm ? " input_layernorm" : " post_attention_layernorm"),
                          (*norm)->forward(x.to(dev, torch::kBFloat16)), nb.ref, nb.bound));
  }
  const torch::Tensor w = d64(l16.input_layernorm->weight).to(torch::kFloat);
  const torch::Tensor h = w * x * torch::rsqrt(x.pow(2).mean(-1, true) + cfg.rms_norm_eps);  // float32 norm
  for (auto& c : check_attention(*l16.self_attn, cfg, h, name)) out.push_back(c);
  for (auto& c : check_mlp(*l16.mlp, h, name)) out.push_back(c);
  return out;
}

}  // namespace safekey::test::bf16
