// The analyses on a real tiny model folder (toy tokenizer + random Qwen2) and world records.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <set>
#include <sstream>

#include "safekey/analyze/attention_share.h"
#include "safekey/analyze/generated_u.h"
#include "safekey/analyze/safety_probe.h"
#include "safekey/demo/toy_model.h"
#include "safekey/infer/engine.h"
#include "safekey/infer/prompt.h"
#include "safekey/text/tokenizer.h"
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

namespace {

// Forces each sequence's reply at its prefill (by sequence id), then hands every step to `inner`.
class ForceReplies : public infer::DecodeObserver {
 public:
  ForceReplies(std::vector<std::vector<int64_t>> replies, std::shared_ptr<infer::DecodeObserver> inner)
      : replies_(std::move(replies)), inner_(std::move(inner)) {}
  void on_step(infer::StepView& v, infer::Engine& e) override {
    if (v.prefill)
      for (uint64_t id : v.ids) e.force(id, replies_.at(id));
    inner_->on_step(v, e);
  }
  void on_finish(uint64_t id, infer::Completion& c) override { inner_->on_finish(id, c); }

 private:
  std::vector<std::vector<int64_t>> replies_;
  std::shared_ptr<infer::DecodeObserver> inner_;
};

std::vector<int64_t> prompt_of(const data::TokenizedExample& ex) {
  return {ex.input_ids.begin(), ex.input_ids.begin() + ex.query_len};
}

}  // namespace

// When the model writes exactly the record's response (forced token for token, as training
// tokenized it), the U found while decoding is the record's U — the world's U is one sentence —
// and its state is the teacher-forced probe's feature. Catches: the state of the token after U
// (or before its last), a U counted from the wrong token, states read from the wrong row of a
// batch (8 sequences decode together, prompts of different lengths), and a search that does not
// stop at the first sentence. The observer also ends each sequence once U is known (stop token).
TEST(AnalyzeGeneratedU, ForcedReferenceRepliesGiveTheTeacherForcedFeatures) {
  const auto& f = fixture();
  auto model = model::load_model(f.model_dir);
  const auto tok = text::Tokenizer::from_file(f.model_dir);
  auto ds = train::load_record_examples(f.records, f.model_dir, {"4o_rewrite"}, false, "", 512, false);
  ds.examples.resize(16);
  std::vector<int> labels;
  int64_t skipped = 0;
  const auto want = analyze::end_of_u_features(model, ds.examples, &labels, &skipped);
  ASSERT_EQ(skipped, 0);

  auto states = std::make_shared<analyze::GeneratedUStates>(tok, 64);
  std::vector<std::vector<int64_t>> replies;
  std::vector<infer::Request> reqs(ds.examples.size());
  for (size_t i = 0; i < ds.examples.size(); ++i) {
    const auto& ex = ds.examples[i];
    ASSERT_EQ(ex.u_begin, ex.query_len);
    replies.emplace_back(ex.input_ids.begin() + ex.query_len, ex.input_ids.begin() + ex.k_end);
    reqs[i].prompt_ids = prompt_of(ex);
  }
  infer::GeneratorOptions go;
  go.max_batch_size = 8;
  go.observer = std::make_shared<ForceReplies>(replies, states);
  infer::Generator gen(model, tok, nullptr, go);
  const int64_t eos = gen.eos_token_ids().at(0);
  states->stop_with(eos);
  infer::SamplingParams p;
  p.max_new_tokens = 80;
  p.ignore_eos = false;
  const auto out = gen.generate(reqs, p);
  ASSERT_EQ(states->results().size(), ds.examples.size());
  for (size_t i = 0; i < ds.examples.size(); ++i) {
    const auto& ex = ds.examples[i];
    const auto& u = states->results().at(i);
    ASSERT_TRUE(u.found) << i;
    EXPECT_EQ(u.tokens, ex.u_end - ex.u_begin) << i << ": " << u.text;
    const std::vector<int64_t> u_ids(ex.input_ids.begin() + ex.u_begin, ex.input_ids.begin() + ex.u_end);
    EXPECT_EQ(u.text, infer::decode_ids(tok, u_ids, true)) << i;
    EXPECT_LT((u.last - want[static_cast<int64_t>(i)]).abs().max().item<double>(), 1e-4) << i;
    // Ended once U was known: the stop token follows the tokens already queued (the reply).
    EXPECT_EQ(out[i].finish_reason, "stop") << i;
    EXPECT_EQ(out[i].token_ids.size(), replies[i].size() + 1) << i;
    EXPECT_EQ(out[i].token_ids.back(), eos) << i;
  }
}

// A model whose greedy reply to any prompt ending in "\n" is kReply: a bigram chain. Every chain
// token (and the prompt's last token) has its own embedding direction, the unembedding row of the
// next token points along it, and eos follows the last; attention and MLP add only a small
// context-dependent term (so hidden states differ between prompts, as they must for the probe).
constexpr const char* kReply = "The user wants harm. No!";  // no token twice (toy BPE)
constexpr const char* kReplyU = "The user wants harm.";

std::string bigram_model(const std::string& tok_dir, const std::string& dir) {
  const auto tok = text::Tokenizer::from_file(tok_dir);
  json cfg = read_json_file(path_join(tok_dir, "config.json"));
  cfg["hidden_size"] = 64;
  cfg["intermediate_size"] = 64;
  cfg["num_hidden_layers"] = 1;
  cfg["tie_word_embeddings"] = false;
  model::DecoderModel m(model::ModelConfig::from_json(cfg, "bigram"));
  const auto enc = [&](const std::string& t) {
    auto v = tok.encode_ids(t, false);
    return std::vector<int64_t>(v.begin(), v.end());
  };
  std::vector<int64_t> chain = enc("\n");
  EXPECT_EQ(chain.size(), 1u);
  for (int64_t t : enc(kReply)) chain.push_back(t);
  chain.push_back(cfg["eos_token_id"].get<int64_t>());
  EXPECT_LE(chain.size(), 64u);
  EXPECT_EQ(std::set<int64_t>(chain.begin(), chain.end()).size(), chain.size());  // a chain, no branch
  torch::NoGradGuard ng;
  torch::manual_seed(3);
  for (auto& [name, w] : m->hf_named_parameters()) {
    if (name.find("norm") != std::string::npos) {
      w.fill_(1.0);
    } else if (name.find("v_proj.weight") != std::string::npos || name.find("o_proj.weight") != std::string::npos) {
      w.normal_(0, 0.15);
    } else if (name == "model.embed_tokens.weight") {
      w.normal_(0, 0.3);
      for (size_t i = 0; i + 1 < chain.size(); ++i) {
        w[chain[i]].zero_();
        w[chain[i]][static_cast<int64_t>(i)] = 4.0;
      }
    } else if (name == "lm_head.weight") {
      w.zero_();
      for (size_t i = 0; i + 1 < chain.size(); ++i) w[chain[i + 1]][static_cast<int64_t>(i)] = 1.0;
    } else {
      w.zero_();
    }
  }
  model::save_model(m, dir);
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
    write_file_atomic(path_join(dir, f), read_file(path_join(tok_dir, f)));
  return dir;
}

const std::string& bigram_dir() {
  static const std::string d = bigram_model(fixture().model_dir, test::make_temp_dir("analyze_bigram") + "/model");
  return d;
}

// The library path end to end, on a model whose reply is known: every record's U is kReply's first
// sentence, its length the tokens of that sentence (the reply's tokenization splits there), its
// state an uncached forward's over the record's prompt + U; the states differ between records.
// Catches prompts built from the wrong tokens (the states would differ from the forward), a U one
// token short or long, a search that reads past the first sentence, rows attributed to the wrong
// record, and a limit below U's length not honoured.
TEST(AnalyzeGeneratedU, OwnRepliesOfAModelWithAKnownReply) {
  const auto& f = fixture();
  auto model = model::load_model(bigram_dir());
  const auto tok = text::Tokenizer::from_file(bigram_dir());
  auto ds = train::load_record_examples(f.records, bigram_dir(), {"4o_rewrite"}, false, "", 512, false);
  ds.examples.resize(12);
  const auto u_ids = tok.encode_ids(kReplyU, false);
  const auto reply_ids = tok.encode_ids(kReply, false);
  ASSERT_TRUE(std::equal(u_ids.begin(), u_ids.end(), reply_ids.begin()));  // the split falls at the period
  analyze::GeneratedUOptions opt;
  opt.max_u_tokens = 40;
  opt.batch_size = 5;
  const auto g = analyze::generated_end_of_u_features(model, tok, ds.examples, opt);
  ASSERT_EQ(g.examples.size(), 12u);
  EXPECT_EQ(g.skipped, 0);
  torch::NoGradGuard ng;
  double spread = 0;
  for (size_t r = 0; r < 12; ++r) {
    EXPECT_EQ(g.examples[r], r);
    EXPECT_EQ(g.texts[r], kReplyU);
    EXPECT_EQ(g.tokens[r], static_cast<int64_t>(u_ids.size()));
    EXPECT_EQ(g.labels[r], ds.examples[r].unsafe);
    std::vector<int64_t> seq = prompt_of(ds.examples[r]);
    seq.insert(seq.end(), u_ids.begin(), u_ids.end());
    model::ForwardInput in;
    in.input_ids = torch::tensor(seq, torch::kLong).view({1, -1});
    in.compute_logits = false;
    const auto h = model->forward(in).hidden[0][static_cast<int64_t>(seq.size()) - 1];
    const auto row = g.features[static_cast<int64_t>(r)];
    EXPECT_LT((row - h).abs().max().item<double>(), 1e-4) << r;
    spread = std::max(spread, (row - g.features[0]).abs().max().item<double>());
  }
  EXPECT_GT(spread, 1e-3);  // the prompts do reach the state
  opt.max_u_tokens = static_cast<int64_t>(u_ids.size()) - 1;  // U does not fit: every record skipped
  try {
    analyze::generated_end_of_u_features(model, tok, ds.examples, opt);
    ADD_FAILURE() << "no U within the limit must be an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("none of the 12 replies"), std::string::npos) << e.what();
  }
}

// The command: --generated gives the library's probe on the same records, --u-out lists every
// record in order, and --u-out without --generated is an error.
TEST(AnalyzeCli, ProbeOnGeneratedU) {
  const auto& f = fixture();
  const std::string dir = test::make_temp_dir("analyze_gen_cli");
  const auto r = test::run_safekey({"analyze", "probe", "--model", bigram_dir(), "--data", f.records, "--generated",
                                    "--limit", "40", "--out", dir + "/p.json", "--u-out", dir + "/u.jsonl"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json pr = read_json_file(dir + "/p.json");
  EXPECT_EQ(pr["u"], "generated");
  EXPECT_EQ(pr["train"].get<int64_t>() + pr["test"].get<int64_t>(), 40);
  EXPECT_EQ(pr["skipped"].get<int64_t>(), 0);
  std::vector<std::string> lines;
  {
    std::istringstream in(read_file(dir + "/u.jsonl"));
    for (std::string l; std::getline(in, l);) lines.push_back(l);
  }
  ASSERT_EQ(lines.size(), 40u);
  auto model = model::load_model(bigram_dir());
  const auto tok = text::Tokenizer::from_file(bigram_dir());
  auto ds = train::load_record_examples(f.records, bigram_dir(), {"4o_rewrite"}, false, "", 8192, false);
  ds.examples.resize(40);
  for (size_t i = 0; i < 40; ++i) {
    const json j = json::parse(lines[i]);
    EXPECT_EQ(j["record"], ds.examples[i].source);
    EXPECT_EQ(j["unsafe"], ds.examples[i].unsafe);
    EXPECT_EQ(j["u"], kReplyU);
  }
  analyze::GeneratedUOptions opt;  // the command's defaults: --max-u-tokens 128, --repetition-penalty 1.2
  opt.repetition_penalty = 1.2;
  const auto g = analyze::generated_end_of_u_features(model, tok, ds.examples, opt);
  const auto want = analyze::linear_probe(g.features, g.labels, {});
  EXPECT_DOUBLE_EQ(pr["test_accuracy"].get<double>(), want.test_accuracy);
  EXPECT_DOUBLE_EQ(pr["train_accuracy"].get<double>(), want.train_accuracy);

  const auto bad = test::run_safekey({"analyze", "probe", "--model", f.model_dir, "--data", f.records, "--u-out",
                                      dir + "/x.jsonl"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("--u-out needs --generated"), std::string::npos) << bad.err;
}
