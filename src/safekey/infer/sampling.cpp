#include "safekey/infer/sampling.h"

#include <cmath>

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

}  // namespace safekey::infer
