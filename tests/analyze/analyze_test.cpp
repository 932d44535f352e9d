// The analyses on a real tiny model folder (toy tokenizer + random Qwen2) and world records.
#include <gtest/gtest.h>

#include <torch/torch.h>

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

TEST(AnalyzeProbe, SeparableAndRandomLabels) {
  torch::manual_seed(0);
  torch::Tensor x = torch::randn({200, 16});
  std::vector<int> y(200);
  for (int i = 0; i < 200; ++i) {
    y[static_cast<size_t>(i)] = x[i][3].item<float>() > 0 ? 1 : 0;
    x[i][3] += y[static_cast<size_t>(i)] ? 0.5 : -0.5;  // a margin: linearly separable
  }
  EXPECT_GE(analyze::linear_probe(x, y, {}).test_accuracy, 0.98);
  std::vector<int> noise(200);
  for (int i = 0; i < 200; ++i) noise[static_cast<size_t>(i)] = (i * 7919 % 13) % 2;
  const auto r = analyze::linear_probe(torch::randn({200, 16}), noise, {});
  EXPECT_LT(r.test_accuracy, 0.8);
  EXPECT_EQ(r.train + r.test, 200);
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
  EXPECT_GT(pr["test"].get<int>(), 0);
  EXPECT_GE(pr["test_accuracy"].get<double>(), 0.0);
  EXPECT_EQ(json::parse(p.out), pr);
  // A missing data file is one clear error naming it.
  const auto bad = test::run_safekey({"analyze", "probe", "--model", f.model_dir, "--data", dir + "/none.json"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("none.json"), std::string::npos) << bad.err;
}
