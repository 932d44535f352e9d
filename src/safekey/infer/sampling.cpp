#include "safekey/infer/sampling.h"

#include <cmath>
#include <limits>

#include "safekey/util/error.h"

namespace safekey::infer {

void SamplingParams::validate(const std::string& where) const {
  SK_CHECK(max_new_tokens >= 1, where, ": 'max_tokens' must be >= 1 (got ", max_new_tokens, ")");
  SK_CHECK(std::isfinite(temperature) && temperature >= 0.0, where,
           ": 'temperature' must be >= 0 (got ", temperature, ")");
  SK_CHECK(top_p > 0.0 && top_p <= 1.0, where, ": 'top_p' must be in (0, 1] (got ", top_p, ")");
  SK_CHECK(top_k >= -1, where, ": 'top_k' must be -1 (off) or >= 0 (got ", top_k, ")");
  SK_CHECK(std::isfinite(repetition_penalty) && repetition_penalty > 0.0, where,
           ": 'repetition_penalty' must be > 0 (got ", repetition_penalty, ")");
  for (const auto& s : stop) SK_CHECK(!s.empty(), where, ": 'stop' strings must not be empty");
}

void apply_repetition_penalty(torch::Tensor& logits, const std::vector<int64_t>& seen_unique,
                              double penalty) {
  if (penalty == 1.0 || seen_unique.empty()) return;
  auto idx = torch::from_blob(const_cast<int64_t*>(seen_unique.data()),
                              {static_cast<int64_t>(seen_unique.size())}, torch::kInt64);
  auto vals = logits.index_select(0, idx);  // [n]
  auto pen = static_cast<float>(penalty);
  vals = torch::where(vals > 0, vals / pen, vals * pen);
  logits.index_put_({idx}, vals);
}

namespace {

// One draw from the categorical distribution `probs` [n] (float32, sums to ~1).
int64_t draw(const torch::Tensor& probs, std::mt19937_64& rng) {
  auto p = probs.contiguous();
  const float* d = p.data_ptr<float>();
  int64_t n = p.numel();
  double total = 0;
  for (int64_t i = 0; i < n; ++i) total += d[i];
  std::uniform_real_distribution<double> u(0.0, total);
  double r = u(rng), acc = 0;
  int64_t last_nonzero = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (d[i] <= 0) continue;
    acc += d[i];
    last_nonzero = i;
    if (r < acc) return i;
  }
  return last_nonzero;  // rounding at the very end of the range
}

}  // namespace

int64_t choose_token(const torch::Tensor& logits_in, const SamplingParams& p, std::mt19937_64& rng) {
  // logits_in: [V]
  if (p.greedy()) return logits_in.argmax().item<int64_t>();
  auto logits = logits_in.to(torch::kFloat32) / static_cast<float>(p.temperature);  // [V]
  int64_t V = logits.size(0);
  bool use_k = p.top_k > 0 && p.top_k < V;
  bool use_p = p.top_p < 1.0;
  if (!use_k && !use_p) return draw(torch::softmax(logits, 0), rng);

  // Candidates sorted by descending logit: [n]
  torch::Tensor vals, ids;
  if (use_k) {
    std::tie(vals, ids) = logits.topk(p.top_k);  // sorted
  } else {
    std::tie(vals, ids) = logits.sort(/*dim=*/0, /*descending=*/true);
  }
  auto probs = torch::softmax(vals, 0);  // renormalised over the top-k
  if (use_p) {
    // Keep the smallest prefix whose mass reaches top_p (the first token always stays).
    auto cum = probs.cumsum(0) - probs;  // mass before each candidate
    auto keep = cum < static_cast<float>(p.top_p);
    probs = probs * keep.to(torch::kFloat32);
  }
  int64_t j = draw(probs, rng);
  return ids[j].item<int64_t>();
}

torch::Tensor choose_tokens(const torch::Tensor& logits_in, const torch::Tensor& seen,
                            const std::vector<const SamplingParams*>& params, const std::vector<double>& uniforms) {
  const int64_t n = logits_in.size(0), V = logits_in.size(1);
  SK_CHECK(static_cast<int64_t>(params.size()) == n && static_cast<int64_t>(uniforms.size()) == n,
           "choose_tokens: ", n, " rows but ", params.size(), " parameter sets and ", uniforms.size(), " draws");
  const auto dev = logits_in.device();
  auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  // Per-row parameters, built on the host and moved in one transfer: [penalty, 1/temperature, k, p, u, greedy].
  torch::Tensor host = torch::empty({n, 6}, f32.dtype(torch::kFloat64));
  auto h = host.accessor<double, 2>();
  bool any_penalty = false, all_greedy = true, any_k = false, any_p = false;
  for (int64_t i = 0; i < n; ++i) {
    const SamplingParams& p = *params[static_cast<size_t>(i)];
    const bool greedy = p.greedy();
    const bool use_k = !greedy && p.top_k > 0 && p.top_k < V, use_p = !greedy && p.top_p < 1.0;
    h[i][0] = p.repetition_penalty;
    h[i][1] = greedy ? 1.0 : 1.0 / p.temperature;
    h[i][2] = static_cast<double>(use_k ? p.top_k : V);
    h[i][3] = use_p ? p.top_p : 2.0;  // 2: every candidate's preceding mass is below it
    h[i][4] = uniforms[static_cast<size_t>(i)];
    h[i][5] = greedy ? 1.0 : 0.0;
    any_penalty = any_penalty || p.repetition_penalty != 1.0;
    all_greedy = all_greedy && greedy;
    any_k = any_k || use_k;
    any_p = any_p || use_p;
  }
  torch::Tensor par = host.to(dev);  // [n, 6] float64
  torch::Tensor logits = logits_in.to(torch::kFloat32);
  if (any_penalty && seen.defined()) {
    // vLLM's penalty: divide positive logits by it, multiply the others (rows with penalty 1 unchanged).
    torch::Tensor pen = par.select(1, 0).unsqueeze(1).to(torch::kFloat32);  // [n, 1]
    torch::Tensor penalised = torch::where(logits > 0, logits / pen, logits * pen);
    logits = torch::where(seen.to(torch::kBool), penalised, logits);
  }
  torch::Tensor greedy_ids = logits.argmax(-1);  // first maximum, as choose_token
  if (all_greedy) return greedy_ids;
  torch::Tensor scaled = logits * par.select(1, 1).unsqueeze(1).to(torch::kFloat32);
  // Candidates in descending order when top-k or top-p needs an order: the kmax largest when every
  // sampled row has a top-k (a partial selection), all of them otherwise. Without either, the draw
  // runs over the vocabulary in id order (no sort).
  torch::Tensor vals = scaled, order;  // order undefined = id order
  if (any_k || any_p) {
    int64_t kmax = 0;
    for (int64_t i = 0; i < n; ++i)
      if (h[i][5] < 0.5) kmax = std::max(kmax, static_cast<int64_t>(h[i][2]));
    if (kmax < V)
      std::tie(vals, order) = scaled.topk(kmax, -1, /*largest=*/true, /*sorted=*/true);
    else
      std::tie(vals, order) = scaled.sort(-1, /*descending=*/true);
  }
  const int64_t C = vals.size(1);
  if (any_k) {
    torch::Tensor rank = torch::arange(C, torch::TensorOptions().dtype(torch::kFloat64).device(dev)).unsqueeze(0);
    vals = vals.masked_fill(rank >= par.select(1, 2).unsqueeze(1), -std::numeric_limits<float>::infinity());
  }
  torch::Tensor probs = torch::softmax(vals, -1);  // renormalised over the kept top-k
  if (any_p) {
    torch::Tensor before = probs.cumsum(-1) - probs;  // mass before each candidate
    probs = probs * (before < par.select(1, 3).unsqueeze(1).to(torch::kFloat32)).to(torch::kFloat32);
  }
  torch::Tensor cdf = probs.to(torch::kFloat64).cumsum(-1);                       // [n, C]
  torch::Tensor target = (par.select(1, 4) * cdf.select(1, C - 1)).unsqueeze(1);  // u * kept mass
  torch::Tensor j = torch::searchsorted(cdf, target, /*out_int32=*/false, /*right=*/true);  // first cdf > target
  // Rounding at the very end of the range: the last kept candidate (kept candidates are a prefix of
  // the order; in id order, the last id).
  torch::Tensor last = order.defined() ? (probs > 0).sum(-1, /*keepdim=*/true) - 1
                                       : torch::full({n, 1}, C - 1, j.options());
  j = torch::minimum(j, last.clamp_min(0));
  torch::Tensor drawn = order.defined() ? order.gather(1, j).squeeze(1) : j.squeeze(1);
  return torch::where(par.select(1, 5) > 0.5, greedy_ids, drawn);
}

}  // namespace safekey::infer
