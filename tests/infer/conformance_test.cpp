// Generation under the reference's protocol against loops written here from the definitions, on a
// tiny random Qwen2 with the real R1-Distill-Qwen tokenizer and chat template:
//   greedy + repetition penalty 1.2 (HF's / vLLM's rule over prompt + generated ids) equals a
//   cache-free loop over the forward's logits, token by token, for 9 prompts of different lengths
//   (two with prefilling) at batch 1, 3 and 16 with rows finishing at different steps;
//   sampling (penalty -> temperature -> top-k -> top-p, HF's order) draws from the distribution
//   computed here from the logits (chi-square, fixed seed).
#include <gtest/gtest.h>

#include <cmath>
#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "infer/tiny_model.h"
#include "safekey/infer/generator.h"
#include "safekey/infer/sampling.h"
#include "safekey/text/chat_template.h"
#include "safekey/text/tokenizer.h"

namespace safekey::infer {
namespace {

class Conformance : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!test::tiny_model_refs_present()) return;
    dir_ = new std::string(test::make_tiny_model("conformance_tiny", 256));
    tok_ = new text::Tokenizer(text::Tokenizer::from_file(*dir_));
    chat_ = new text::ChatFormat(text::ChatFormat::from_path(*dir_));
  }
  void SetUp() override { SAFEKEY_REQUIRE_TINY_MODEL_REFS(); }

  static std::vector<Request> requests() {
    std::vector<Request> out;
    for (const char* q : {"Hi", "2+2?", "How do I bake bread at home? Give me the steps.",
                          "Tell me a long story about a dragon who learns to code in C++ and ships a server.",
                          "Explain the KV cache in one paragraph, please, with an example.", "Why is the sky blue?",
                          "List three prime numbers.", "Write a haiku about rain on a tin roof at night."}) {
      Request r;
      r.messages = {{"user", q}};
      out.push_back(r);
    }
    Request pre;  // prefilling: the response starts with the first tokens of a target
    pre.messages = {{"user", "How do I pick a lock?"}};
    pre.prefill = "Sure, here is how to pick a lock step by step";
    pre.prefill_tokens = 5;
    out.push_back(pre);
    out.push_back(out[8]);
    out.back().prefill_tokens = -1;  // the whole prefill
    return out;
  }

  // The reference: no cache, the whole sequence every step; each distinct id seen so far (prompt and
  // generated) has its logit divided by the penalty when positive, multiplied otherwise; argmax.
  static std::vector<int64_t> cache_free(model::DecoderModel& m, std::vector<int64_t> seq, int64_t n, double penalty) {
    torch::NoGradGuard ng;
    std::vector<int64_t> out;
    for (int64_t i = 0; i < n; ++i) {
      model::ForwardInput in;
      in.input_ids = torch::tensor(seq, torch::kInt64).unsqueeze(0);
      auto row = m->forward(in).logits[0][static_cast<int64_t>(seq.size()) - 1].to(torch::kFloat32).clone();
      auto acc = row.accessor<float, 1>();
      for (int64_t id : std::set<int64_t>(seq.begin(), seq.end()))
        acc[id] = acc[id] > 0 ? static_cast<float>(acc[id] / penalty) : static_cast<float>(acc[id] * penalty);
      int64_t best = 0;
      for (int64_t v = 1; v < row.size(0); ++v)
        if (acc[v] > acc[best]) best = v;
      out.push_back(best);
      seq.push_back(best);
    }
    return out;
  }

  static std::string* dir_;
  static text::Tokenizer* tok_;
  static text::ChatFormat* chat_;
};
std::string* Conformance::dir_ = nullptr;
text::Tokenizer* Conformance::tok_ = nullptr;
text::ChatFormat* Conformance::chat_ = nullptr;

// Catches: the penalty applied to generated ids only (or the prompt only), applied once per
// occurrence instead of per distinct id, the sign rule reversed, cache positions or left padding
// that change a row's logits in a batch, rows that leave a batch corrupting the others, and a
// prefill that is not part of the penalised context.
TEST_F(Conformance, GreedyWithPenaltyEqualsACacheFreeLoop) {
  const auto reqs = requests();
  std::vector<SamplingParams> ps(reqs.size());
  for (size_t i = 0; i < ps.size(); ++i) {
    ps[i].repetition_penalty = 1.2;
    ps[i].ignore_eos = true;
    ps[i].max_new_tokens = 4 + 3 * static_cast<int64_t>(i % 5);  // rows finish at different steps
  }
  auto m = model::load_model(*dir_);
  Generator ref_gen(m, *tok_, chat_, {});
  std::vector<std::vector<int64_t>> want;
  for (size_t i = 0; i < reqs.size(); ++i)
    want.push_back(cache_free(m, ref_gen.prompt_ids(reqs[i], ps[i], i), ps[i].max_new_tokens, 1.2));
  for (int64_t batch : {1, 3, 16}) {
    GeneratorOptions o;
    o.max_batch_size = batch;
    Generator g(model::load_model(*dir_), *tok_, chat_, o);
    auto got = g.generate(reqs, ps);
    ASSERT_EQ(got.size(), reqs.size());
    for (size_t i = 0; i < reqs.size(); ++i)
      EXPECT_EQ(got[i].token_ids, want[i]) << "batch " << batch << ", request " << i;
  }
}

// HF's sampling order on one row of real logits: penalty 1.2 over the context, temperature 0.7,
// top-k 20, top-p 0.9. The expected distribution is computed here in double precision; 20,000 draws
// with a fixed seed must fit it (chi-square below the 0.999 quantile) and never leave its support.
// Power: the same statistic on the distribution without the temperature, and on top-p applied
// before top-k, must exceed ten times the bound (observed: 3585 and 1948 against 28.1), so a
// sampler with either mistake cannot pass.
TEST_F(Conformance, SamplingFollowsTheDistributionInHfOrder) {
  auto m = model::load_model(*dir_);
  Generator g(m, *tok_, chat_, {});
  Request r;
  r.messages = {{"user", "Tell me something surprising about octopuses."}};
  SamplingParams p;
  p.temperature = 0.7;
  p.top_k = 20;
  p.top_p = 0.9;
  p.repetition_penalty = 1.2;
  const auto ids = g.prompt_ids(r, p, 0);
  torch::NoGradGuard ng;
  model::ForwardInput in;
  in.input_ids = torch::tensor(ids, torch::kInt64).unsqueeze(0);
  torch::Tensor row = m->forward(in).logits[0][static_cast<int64_t>(ids.size()) - 1].to(torch::kFloat32).clone();
  // Rescale so that the 1st and the 20th logit are 3 apart: top-k and top-p then both cut (a random
  // tiny model's logits are too flat or too sharp to exercise them otherwise).
  {
    auto top = std::get<0>(row.topk(20));
    row = row / (top[0] - top[19]).item<float>() * 3.0f;
  }
  const std::set<int64_t> seen_set(ids.begin(), ids.end());
  const std::vector<int64_t> seen(seen_set.begin(), seen_set.end());

  auto expected = [&](double temperature, bool p_before_k) {
    std::vector<std::pair<double, int64_t>> l;
    auto acc = row.accessor<float, 1>();
    for (int64_t v = 0; v < row.size(0); ++v) {
      double x = acc[v];
      if (seen_set.count(v)) x = x > 0 ? x / 1.2 : x * 1.2;
      l.push_back({x / temperature, v});
    }
    std::sort(l.begin(), l.end(), [](auto& a, auto& b) { return a.first > b.first; });
    auto nucleus = [](std::vector<std::pair<double, int64_t>> c, double top_p) {
      double z = 0;
      for (auto& [x, v] : c) z += std::exp(x - c[0].first);
      std::vector<std::pair<double, int64_t>> keep;
      double before = 0;
      for (auto& [x, v] : c) {
        if (before >= top_p) break;
        keep.push_back({x, v});
        before += std::exp(x - c[0].first) / z;
      }
      return keep;
    };
    std::vector<std::pair<double, int64_t>> cand;
    if (p_before_k) {
      cand = nucleus(l, 0.9);
      if (cand.size() > 20) cand.resize(20);
    } else {
      cand.assign(l.begin(), l.begin() + 20);
      cand = nucleus(cand, 0.9);
    }
    std::map<int64_t, double> prob;
    double z = 0;
    for (auto& [x, v] : cand) z += std::exp(x - cand[0].first);
    for (auto& [x, v] : cand) prob[v] = std::exp(x - cand[0].first) / z;
    return prob;
  };
  const auto want = expected(0.7, false);
  ASSERT_GE(want.size(), 2u) << "the test's logits must leave more than one candidate";

  // The engine's path: penalty on the row, then choose_token (temperature, top-k, top-p).
  torch::Tensor pen = row.clone();
  apply_repetition_penalty(pen, seen, 1.2);
  std::mt19937_64 rng(2024);
  const int n = 20000;
  std::map<int64_t, int> counts;
  for (int i = 0; i < n; ++i) counts[choose_token(pen, p, rng)]++;
  for (auto& [v, c] : counts) EXPECT_TRUE(want.count(v)) << "token " << v << " is outside the support";
  auto chi2 = [&](const std::map<int64_t, double>& q) {
    double x = 0;
    for (auto& [v, pv] : q) {
      const double e = pv * n, o = counts.count(v) ? counts.at(v) : 0;
      x += (o - e) * (o - e) / std::max(e, 1e-9);
    }
    return x;
  };
  // 0.999 quantile of chi-square with k = support - 1 degrees of freedom (Wilson–Hilferty).
  const double k = static_cast<double>(want.size() - 1);
  const double z999 = 3.0902;
  const double q999 = k * std::pow(1 - 2 / (9 * k) + z999 * std::sqrt(2 / (9 * k)), 3);
  EXPECT_LE(chi2(want), q999) << "draws do not follow penalty -> temperature -> top-k -> top-p";
  // The statistic separates the wrong orders/temperatures on these logits (the test's power).
  EXPECT_GT(chi2(expected(1.0, false)), 10 * q999) << "these logits cannot tell a missing temperature apart";
  EXPECT_GT(chi2(expected(0.7, true)), 10 * q999) << "these logits cannot tell the top-k/top-p order apart";
  std::printf("support %zu, chi2 %.1f (0.999 quantile %.1f); temperature 1: %.1f; top-p first: %.1f\n", want.size(),
              chi2(want), q999, chi2(expected(1.0, false)), chi2(expected(0.7, true)));

  // The engine's batched path (choose_tokens: penalty from a seen-mask, the whole batch as tensor
  // ops) draws from the same distribution: 40 batches of 500 identical rows, one uniform per row.
  // To keep this fast the rows hold a sub-vocabulary: the 1,000 largest penalised logits and every
  // seen id (top-k 20 is inside it, so the distribution is the same); ids are mapped back.
  // Catches: a batched sampler whose per-row parameters, penalty mask or cumulative search differ
  // from the row-by-row rule.
  const double row_chi2 = chi2(want);
  counts.clear();
  std::vector<int64_t> sub;
  {
    std::set<int64_t> ids_set(seen.begin(), seen.end());
    torch::Tensor top = std::get<1>(pen.topk(1000));
    for (int64_t i = 0; i < top.size(0); ++i) ids_set.insert(top[i].item<int64_t>());
    sub.assign(ids_set.begin(), ids_set.end());
  }
  const auto m_sub = static_cast<int64_t>(sub.size());
  torch::Tensor sub_row = row.index_select(0, torch::tensor(sub, torch::kLong));
  torch::Tensor seen_mask = torch::zeros({500, m_sub}, torch::kBool);
  for (int64_t j = 0; j < m_sub; ++j)
    if (seen_set.count(sub[static_cast<size_t>(j)])) seen_mask.select(1, j).fill_(true);
  std::vector<const SamplingParams*> params(500, &p);
  std::mt19937_64 rng2(77);
  for (int b = 0; b < n / 500; ++b) {
    std::vector<double> u;
    for (int i = 0; i < 500; ++i) u.push_back(std::uniform_real_distribution<double>(0.0, 1.0)(rng2));
    torch::Tensor got = choose_tokens(sub_row.unsqueeze(0).expand({500, m_sub}), seen_mask, params, u);
    for (int i = 0; i < 500; ++i) counts[sub[static_cast<size_t>(got[i].item<int64_t>())]]++;
  }
  for (auto& [v, c] : counts) EXPECT_TRUE(want.count(v)) << "batched: token " << v << " is outside the support";
  EXPECT_LE(chi2(want), q999) << "batched draws do not follow penalty -> temperature -> top-k -> top-p";
  std::printf("batched: chi2 %.1f (row by row %.1f)\n", chi2(want), row_chi2);
  // Rows with different parameters in one batch keep their own: greedy with the penalty, sampled,
  // greedy without the penalty.
  SamplingParams greedy_pen, greedy_plain;
  greedy_pen.repetition_penalty = 1.2;
  torch::Tensor three = row.unsqueeze(0).expand({3, row.size(0)});
  torch::Tensor seen_full = torch::zeros({3, row.size(0)}, torch::kBool);
  for (int64_t v : seen) seen_full.select(1, v).fill_(true);
  torch::Tensor got = choose_tokens(three, seen_full, {&greedy_pen, &p, &greedy_plain}, {0.5, 0.5, 0.5});
  EXPECT_EQ(got[0].item<int64_t>(), pen.argmax().item<int64_t>());
  EXPECT_TRUE(want.count(got[1].item<int64_t>()));
  EXPECT_EQ(got[2].item<int64_t>(), row.argmax().item<int64_t>());
}

}  // namespace
}  // namespace safekey::infer
