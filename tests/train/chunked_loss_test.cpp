// Chunked cross-entropy (--loss-chunk-tokens): the LM head and the loss over chunks of target
// positions, recomputed in backward, equal the one-pass computation: the loss, the token accuracy,
// the gradient of the hidden states and of every parameter (untied LM head and tied embeddings),
// alone and inside the whole SafeKey step (SFT + QMM + head). Catches: a chunk boundary that drops
// or repeats targets, padding (-100) counted, a missing 1/count, a backward that forgets the LM
// head weight's gradient (or the tied embedding's), and chunks whose gradients are not summed.
#include <gtest/gtest.h>

#include <cmath>

#include "safekey/model/decoder.h"
#include "safekey/train/batch.h"
#include "safekey/train/dataset.h"
#include "safekey/train/objectives/sft_loss.h"
#include "safekey/train/step.h"
#include "support/support.h"
#include "train/tiny.h"

using namespace safekey;
using namespace safekey::train;

namespace {

model::DecoderModel tiny(bool tied) {
  auto j = test::tiny_config_json(96, 32, 2);
  j["tie_word_embeddings"] = tied;
  model::DecoderModel m(model::ModelConfig::from_json(j, "tiny"));
  model::init_weights(m, 3);
  return m;
}

// Index of the LM head's weight among hf_named_parameters (the embedding when tied).
size_t lm_head_index(model::DecoderModel& m) {
  auto named = m->hf_named_parameters();
  for (size_t i = 0; i < named.size(); ++i)
    if (named[i].first == "lm_head.weight") return i;
  return 0;  // model.embed_tokens.weight comes first
}

std::vector<torch::Tensor> take_grads(model::DecoderModel& m) {
  std::vector<torch::Tensor> out;
  for (auto& [n, p] : m->hf_named_parameters()) {
    out.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
    p.mutable_grad() = torch::Tensor();
  }
  return out;
}

double max_diff(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, (a[i] - b[i]).abs().max().item<double>());
  return d;
}

// Float32 sums in another order: observed ≤ 3e-8 on these sizes; 1e-6 is far below any real error
// (a dropped target changes the loss by ~1/count ≈ 3e-2).
constexpr double kTol = 1e-6;

}  // namespace

class ChunkedLoss : public ::testing::TestWithParam<bool> {};

TEST_P(ChunkedLoss, EqualsOnePassLossAccuracyAndGradients) {
  auto m = tiny(GetParam());
  torch::manual_seed(1);
  auto hidden0 = torch::randn({3, 11, 32});
  auto targets = torch::randint(0, 96, {3, 11}, torch::kInt64);
  targets.index_put_({0, torch::indexing::Slice(7, torch::indexing::None)}, -100);  // padding of row 0
  targets.index_put_({2, 3}, -100);                                                   // a hole
  std::vector<torch::Tensor> ref_grads;
  TokenLoss ref;
  torch::Tensor ref_hgrad;
  for (int64_t chunk : {0, 1, 4, 7, 29, 1000}) {
    SCOPED_TRACE(cat("chunk ", chunk));
    auto h = hidden0.clone().requires_grad_(true);
    auto r = lm_head_cross_entropy(m, h, targets, chunk);
    r.loss.backward();
    auto g = take_grads(m);
    if (chunk == 0) {
      ref = r;
      ref_grads = g;
      ref_hgrad = h.grad().clone();
      EXPECT_EQ(r.count, 3 * 11 - 4 - 1);
      continue;
    }
    EXPECT_EQ(r.count, ref.count);
    EXPECT_EQ(r.correct, ref.correct);
    EXPECT_NEAR(r.loss.item<double>(), ref.loss.item<double>(), kTol);
    EXPECT_LE((h.grad() - ref_hgrad).abs().max().item<double>(), kTol);
    EXPECT_LE(max_diff(g, ref_grads), kTol);
    EXPECT_GT(ref_grads[lm_head_index(m)].abs().sum().item<double>(), 0.0) << "the LM head weight must get a gradient";
  }
}

INSTANTIATE_TEST_SUITE_P(TiedAndUntied, ChunkedLoss, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "tied" : "untied"; });

// The whole SafeKey step (SFT + truncated QMM + safety head, with gradient checkpointing) with
// chunks of 5 target positions equals the one-pass step in every loss term and every gradient.
TEST(ChunkedLossStep, SafeKeyStepWithChunksEqualsOnePass) {
  const std::string dir = test::make_temp_dir("chunked_step");
  const std::string data = test::make_tiny_data(dir + "/data.jsonl", 6);
  auto ex = load_pretokenized(data, 96).examples;
  std::vector<const data::TokenizedExample*> rows;
  for (auto& e : ex) rows.push_back(&e);
  Batch b = collate(rows, 95);
  auto m = tiny(false);
  m->set_gradient_checkpointing(true);
  torch::manual_seed(4);
  SafetyHead head(32);
  StepOptions o;
  o.qmm = o.head = true;
  std::vector<StepResult> res;
  std::vector<std::vector<torch::Tensor>> grads;
  for (int64_t chunk : {0, 5}) {
    o.loss_chunk_tokens = chunk;
    res.push_back(safekey_step(m, &head, b, o));
    grads.push_back(take_grads(m));
    for (auto& p : head->parameters()) p.mutable_grad() = torch::Tensor();
  }
  ASSERT_GT(res[0].sft_tokens, 5 * 4) << "the batch must span several chunks";
  EXPECT_NEAR(res[0].sft_loss, res[1].sft_loss, kTol);
  EXPECT_NEAR(res[0].k_loss, res[1].k_loss, kTol);
  EXPECT_NEAR(res[0].total_loss, res[1].total_loss, kTol);
  EXPECT_EQ(res[0].sft_correct, res[1].sft_correct);
  EXPECT_EQ(res[0].k_correct, res[1].k_correct);
  EXPECT_LE(max_diff(grads[0], grads[1]), kTol);

  // host_values = false (the trainer's mode: no device-to-host copy inside the step) leaves the
  // same numbers in StepResult::terms, to be read once per optimizer step.
  o.loss_chunk_tokens = 0;
  o.host_values = false;
  auto dev = safekey_step(m, &head, b, o);
  auto t = dev.terms.cpu();
  const double* v = t.data_ptr<double>();
  EXPECT_DOUBLE_EQ(v[0], res[0].total_loss);
  EXPECT_DOUBLE_EQ(v[1], res[0].sft_loss);
  EXPECT_DOUBLE_EQ(v[2], res[0].k_loss);
  EXPECT_DOUBLE_EQ(v[3], res[0].head_loss);
  EXPECT_DOUBLE_EQ(v[6], static_cast<double>(res[0].sft_correct));
  EXPECT_DOUBLE_EQ(v[7], static_cast<double>(res[0].k_correct));
  EXPECT_EQ(dev.sft_tokens, res[0].sft_tokens);
  EXPECT_EQ(dev.sft_loss, 0.0) << "no host value is read in this mode";
}
