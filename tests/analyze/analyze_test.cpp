// The analyses on a real tiny model folder (toy tokenizer + random Qwen2) and world records.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <cmath>
#include <cstdio>

#include "safekey/analyze/attention_share.h"
#include "safekey/analyze/safety_probe.h"
#include "safekey/demo/toy_model.h"
#include "safekey/train/dataset.h"
#include "safekey/util/file.h"
#include "safekey/world/dataset.h"
#include "support/support.h"

using namespace safekey;

namespace {

struct Fixture {
  std::string model_dir, records;
};

const Fixture& fixture() {
  static Fixture f = [] {
    Fixture x;
    const std::string dir = test::make_temp_dir("analyze");
    world::WorldConfig c = world::WorldConfig::quick();
    const auto d = world::generate_world(c);
    std::vector<std::string> corpus;
    ordered_json arr = ordered_json::array();
    for (const auto& it : d.stage2) {
      const auto r = world::record_json(it);
      corpus.push_back(r["question"].get<std::string>());
      corpus.push_back(r["response"].get<std::string>());
      arr.push_back(r);
    }
    demo::write_toy_tokenizer(corpus, 400, dir + "/tok");
    demo::ToyModelSpec spec;
    spec.hidden_size = 32;
    spec.intermediate_size = 64;
    spec.num_hidden_layers = 2;
    spec.num_attention_heads = 2;
    spec.num_key_value_heads = 1;
    demo::write_toy_model(spec, dir + "/tok", 7, dir + "/model");
    x.model_dir = dir + "/model";
    x.records = dir + "/records.json";
    write_file_atomic(x.records, arr.dump());
    return x;
  }();
  return f;
}

}  // namespace

TEST(AnalyzeAttention, SharesAreProbabilityMassPerLayer) {
  const auto& f = fixture();
  auto model = model::load_model(f.model_dir);
  auto ds = train::load_record_examples(f.records, f.model_dir, {"4o_rewrite"}, false, "", 512, false);
  ds.examples.resize(12);
  const auto r = analyze::attention_shares(model, ds.examples);
  ASSERT_EQ(r.share_u.size(), 2u);
  EXPECT_EQ(r.examples, 12);
  for (size_t l = 0; l < 2; ++l) {
    EXPECT_GT(r.share_u[l], 0.0);
    EXPECT_GT(r.share_x[l], 0.0);
    EXPECT_LE(r.share_u[l] + r.share_x[l], 1.0 + 1e-5);
  }
  // Attention probabilities of every layer are causal rows that sum to one.
  model::ForwardInput in;
  in.input_ids = torch::tensor(std::vector<int64_t>(ds.examples[0].input_ids.begin(), ds.examples[0].input_ids.begin() + 20)).view({1, 20});
  in.output_attentions = true;
  const auto out = model->forward(in);
  ASSERT_EQ(out.attentions.size(), 2u);
  const auto& p = out.attentions[1];  // [1, heads, T, T]
  EXPECT_EQ(p.size(1), 2);
  EXPECT_LT((p.sum(-1) - 1).abs().max().item<double>(), 1e-5);
  EXPECT_LT(p.triu(1).abs().max().item<double>(), 1e-7);
  // Same hidden states with and without attention output.
  in.output_attentions = false;
  EXPECT_LT((model->forward(in).hidden - out.hidden).abs().max().item<double>(), 1e-5);
}

// A model whose weights are all zero attends uniformly: q = k = 0, so every visible key gets the
// same score and K token t (0-based position) puts (u_end - u_begin)/(t + 1) on U and
// query_len/(t + 1) on X. The expected shares below are that formula, averaged over K tokens and
// examples in plain arithmetic. Catches: U and X swapped, spans off by one (rows k_begin-1.. or
// columns up to u_end inclusive), summing instead of averaging over heads (2 heads: twice the
// share), averaging over the whole row range instead of K's rows, and examples without U counted
// in the mean.
TEST(AnalyzeAttention, UniformAttentionGivesTheExactShares) {
  const json cfg_json = {{"architectures", {"Qwen2ForCausalLM"}}, {"vocab_size", 50}, {"hidden_size", 16},
                         {"intermediate_size", 32}, {"num_hidden_layers", 3}, {"num_attention_heads", 2},
                         {"num_key_value_heads", 1}, {"rms_norm_eps", 1e-6}, {"rope_theta", 10000.0},
                         {"tie_word_embeddings", true}};
  model::DecoderModel model(model::ModelConfig::from_json(cfg_json, "zero"));  // every weight 0
  auto example = [](int64_t query_len, int64_t u_len, int64_t k_len, int64_t tail) {
    data::TokenizedExample ex;
    const int64_t n = query_len + u_len + k_len + tail;
    for (int64_t i = 0; i < n; ++i) ex.input_ids.push_back((i * 7 + 3) % 50);
    ex.labels = ex.input_ids;
    ex.query_len = query_len;
    ex.u_begin = query_len;
    ex.u_end = ex.k_begin = query_len + u_len;
    ex.k_end = ex.k_begin + k_len;
    return ex;
  };
  std::vector<data::TokenizedExample> exs = {example(5, 3, 2, 4), example(9, 1, 4, 0), example(2, 6, 1, 3)};
  exs.push_back(example(4, 0, 3, 1));  // no U: skipped, not averaged in
  double want_u = 0, want_x = 0;
  for (size_t e = 0; e < 3; ++e) {
    const auto& ex = exs[e];
    double su = 0, sx = 0;
    for (int64_t t = ex.k_begin; t < ex.k_end; ++t) {
      su += double(ex.u_end - ex.u_begin) / double(t + 1);
      sx += double(ex.query_len) / double(t + 1);
    }
    want_u += su / double(ex.k_end - ex.k_begin) / 3.0;
    want_x += sx / double(ex.k_end - ex.k_begin) / 3.0;
  }
  // By hand for the first example: K rows t = 8, 9 -> U: (3/9 + 3/10)/2 = 0.31667, X: (5/9 + 5/10)/2.
  EXPECT_NEAR((3.0 / 9 + 3.0 / 10) / 2, 0.3166667, 1e-6);
  const auto r = analyze::attention_shares(model, exs);
  EXPECT_EQ(r.examples, 3);
  EXPECT_EQ(r.skipped, 1);
  ASSERT_EQ(r.share_u.size(), 3u);
  for (size_t l = 0; l < 3; ++l) {
    EXPECT_NEAR(r.share_u[l], want_u, 1e-6) << "layer " << l;
    EXPECT_NEAR(r.share_x[l], want_x, 1e-6) << "layer " << l;
  }
}

// On a random model the layers differ; each layer's share must be the K rows' mass on U / X of
// that layer's own attention probabilities (recomputed here from the forward pass's attentions).
// Catches reporting one layer for all, the layers in the wrong order, or a head subset.
TEST(AnalyzeAttention, SharesArePerLayerMassesOfKOnUAndX) {
  const auto& f = fixture();
  auto model = model::load_model(f.model_dir);
  auto ds = train::load_record_examples(f.records, f.model_dir, {"4o_rewrite"}, false, "", 512, false);
  ds.examples.resize(6);
  const auto r = analyze::attention_shares(model, ds.examples);
  ASSERT_EQ(r.share_u.size(), 2u);
  std::vector<double> su(2, 0.0), sx(2, 0.0);
  torch::NoGradGuard ng;
  for (const auto& ex : ds.examples) {
    model::ForwardInput in;
    in.input_ids = torch::tensor(std::vector<int64_t>(ex.input_ids.begin(), ex.input_ids.begin() + ex.k_end)).view({1, -1});
    in.output_attentions = true;
    const auto out = model->forward(in);
    for (size_t l = 0; l < 2; ++l) {
      const auto p = out.attentions[l][0].to(torch::kDouble);  // [heads, T, T]
      double u = 0, x = 0;
      for (int64_t t = ex.k_begin; t < ex.k_end; ++t) {
        for (int64_t h = 0; h < p.size(0); ++h) {
          u += p[h][t].slice(0, ex.u_begin, ex.u_end).sum().item<double>() / double(p.size(0));
          x += p[h][t].slice(0, 0, ex.query_len).sum().item<double>() / double(p.size(0));
        }
      }
      su[l] += u / double(ex.k_end - ex.k_begin) / double(ds.examples.size());
      sx[l] += x / double(ex.k_end - ex.k_begin) / double(ds.examples.size());
    }
  }
  for (size_t l = 0; l < 2; ++l) {
    EXPECT_NEAR(r.share_u[l], su[l], 1e-5) << "layer " << l;
    EXPECT_NEAR(r.share_x[l], sx[l], 1e-5) << "layer " << l;
  }
  EXPECT_GT(std::abs(su[0] - su[1]) + std::abs(sx[0] - sx[1]), 1e-4);  // the layers do differ
}

// Synthetic hidden states with a known answer. 120 harmful and 80 benign rows in 16 dimensions;
// dimension 3 carries the label with a wide margin (|x3| >= 2 after the shift), on a scale and
// offset far from the others (x3 * 1000 + 5000), which only a standardised probe handles.
// Independently known numbers: the stratified 30% split holds round(0.3*120) + round(0.3*80) =
// 36 + 24 = 60 test rows and 140 training rows; the majority baseline is 36/60 = 0.6; a correct
// linear probe classifies every test row (accuracy exactly 1). With the labels shuffled (a fixed
// permutation) the features say nothing: held-out accuracy near chance, while 16 dimensions on 140
// rows still fit part of the noise. Catches: a sign error in the gradient (accuracy 0), a probe
// without standardisation (diverges on the 1000x feature), labels misaligned with rows, a
// non-stratified or wrong-sized split, a wrong baseline, and test accuracy measured on the
// training rows (with shuffled labels the training rows are fitted better than held-out ones).
TEST(AnalyzeProbe, SeparableAndShuffledLabels) {
  torch::manual_seed(0);
  const int n = 200;
  torch::Tensor x = torch::randn({n, 16});
  std::vector<int> y(n);
  for (int i = 0; i < n; ++i) {
    y[size_t(i)] = i < 120 ? 1 : 0;
    const float v = std::abs(x[i][3].item<float>()) + 2.0f;  // margin: |x3| >= 2
    x[i][3] = (y[size_t(i)] ? v : -v) * 1000.0f + 5000.0f;
  }
  const auto r = analyze::linear_probe(x, y, {});
  EXPECT_EQ(r.test, 60);
  EXPECT_EQ(r.train, 140);
  EXPECT_NEAR(r.majority_baseline, 0.6, 1e-6);  // computed in float32
  EXPECT_DOUBLE_EQ(r.test_accuracy, 1.0);
  EXPECT_DOUBLE_EQ(r.train_accuracy, 1.0);

  std::vector<int> shuffled = y;
  for (int i = n - 1; i > 0; --i) std::swap(shuffled[size_t(i)], shuffled[size_t((i * 7919 + 13) % (i + 1))]);
  int moved = 0;
  for (int i = 0; i < n; ++i) moved += shuffled[size_t(i)] != y[size_t(i)];
  ASSERT_GT(moved, 60);  // the permutation really mixes the labels
  const auto s = analyze::linear_probe(x, shuffled, {});
  EXPECT_EQ(s.test, 60);
  EXPECT_NEAR(s.majority_baseline, 0.6, 1e-6);
  // Chance for a probe that has learnt nothing: about the baseline; 60 rows give a standard error
  // of 0.065, so 0.75 is more than 2 standard errors above it.
  EXPECT_LT(s.test_accuracy, 0.75);
  EXPECT_GT(s.test_accuracy, 0.3);
  EXPECT_GT(s.train_accuracy, s.test_accuracy);  // training rows are fitted, held-out ones are not
  std::printf("  probe: separable test %.3f; shuffled train %.3f test %.3f (baseline %.2f)\n", r.test_accuracy,
              s.train_accuracy, s.test_accuracy, s.majority_baseline);
}

TEST(AnalyzeProbe, FeaturesAreTheFinalHiddenStateAtTheEndOfU) {
  const auto& f = fixture();
  auto model = model::load_model(f.model_dir);
  auto ds = train::load_record_examples(f.records, f.model_dir, {"4o_rewrite"}, false, "", 512, false);
  std::vector<int> labels;
  int64_t skipped = 0;
  const auto feats = analyze::end_of_u_features(model, ds.examples, &labels, &skipped);
  ASSERT_EQ(feats.size(0), static_cast<int64_t>(ds.examples.size()));
  EXPECT_EQ(feats.size(1), 32);
  EXPECT_EQ(skipped, 0);
  int harmful = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    EXPECT_EQ(labels[i], ds.examples[i].unsafe);
    harmful += labels[i];
  }
  EXPECT_GT(harmful, 0);
  EXPECT_LT(harmful, static_cast<int>(labels.size()));
  // Row i = the full sequence's final hidden state at u_end - 1 (causality: later tokens do not matter).
  for (size_t i : {size_t{0}, labels.size() / 2, labels.size() - 1}) {
    const auto& ex = ds.examples[i];
    model::ForwardInput in;
    in.input_ids = torch::tensor(ex.input_ids).view({1, -1});
    in.compute_logits = false;
    torch::NoGradGuard ng;
    const auto h = model->forward(in).hidden[0][ex.u_end - 1];
    EXPECT_LT((feats[static_cast<int64_t>(i)] - h).abs().max().item<double>(), 1e-4) << i;
  }
}

TEST(AnalyzeCli, AttentionAndProbeWriteJson) {
  const auto& f = fixture();
  const std::string dir = test::make_temp_dir("analyze_cli");
  const auto a = test::run_safekey({"analyze", "attention", "--model", f.model_dir, "--data", f.records,
                                    "--limit", "10", "--out", dir + "/att.json"});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  const json att = read_json_file(dir + "/att.json");
  EXPECT_EQ(att["share_u"].size(), 2u);
  EXPECT_EQ(att["examples"].get<int>(), 10);
  const auto p = test::run_safekey({"analyze", "probe", "--model", f.model_dir, "--data", f.records,
                                    "--out", dir + "/probe.json"});
  ASSERT_EQ(p.exit_code, 0) << p.err;
  const json pr = read_json_file(dir + "/probe.json");
  EXPECT_EQ(json::parse(p.out), pr);
  // The program computes what the library computes on the same records (catches a CLI that passes
  // other options, other benign sources or a truncated data set), and the split sizes follow from
  // the records' labels alone: round(0.3 * n_class) test rows per class.
  auto model = model::load_model(f.model_dir);
  auto ds = train::load_record_examples(f.records, f.model_dir, {"4o_rewrite"}, false, "", 8192, false);
  std::vector<int> labels;
  int64_t skipped = 0;
  const auto feats = analyze::end_of_u_features(model, ds.examples, &labels, &skipped);
  const auto want = analyze::linear_probe(feats, labels, {});
  int64_t harmful = 0;
  for (int l : labels) harmful += l;
  const int64_t benign = int64_t(labels.size()) - harmful;
  const int64_t n_test = std::llround(0.3 * double(harmful)) + std::llround(0.3 * double(benign));
  EXPECT_EQ(pr["test"].get<int64_t>(), n_test);
  EXPECT_EQ(pr["train"].get<int64_t>() + pr["test"].get<int64_t>(), int64_t(labels.size()));
  EXPECT_DOUBLE_EQ(pr["test_accuracy"].get<double>(), want.test_accuracy);
  EXPECT_DOUBLE_EQ(pr["train_accuracy"].get<double>(), want.train_accuracy);
  EXPECT_DOUBLE_EQ(pr["majority_baseline"].get<double>(), want.majority_baseline);
  const double correct = pr["test_accuracy"].get<double>() * double(n_test);  // a count of rows
  EXPECT_NEAR(correct, std::round(correct), 1e-6);
  ds.examples.resize(10);
  const auto shares = analyze::attention_shares(model, ds.examples);
  // (float32 sums in another process: equal to float32 rounding)
  for (size_t l = 0; l < 2; ++l) EXPECT_NEAR(att["share_u"][l].get<double>(), shares.share_u[l], 1e-6);
  // A missing data file is one clear error naming it.
  const auto bad = test::run_safekey({"analyze", "probe", "--model", f.model_dir, "--data", dir + "/none.json"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("none.json"), std::string::npos) << bad.err;
}
