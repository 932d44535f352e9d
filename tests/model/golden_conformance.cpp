// Conformance of the decoder with Hugging Face transformers 4.51 on the tiny golden models
// (../shared/golden/{qwen2,llama,qwen3}, see its README): logits and final hidden states of three
// sequences, the key-masked variant at positions >= 7, incremental decoding with the KV cache, and a
// bit-identical load -> save -> load round trip. Tolerance (golden README): |a-b| <= 1e-4 + 1e-5|b|.
//
// SAFEKEY_TEST_DEVICE (default cpu; e.g. cuda) and SAFEKEY_TEST_DTYPE (float32 or bfloat16) run the
// forward tests on that device and dtype. float32 keeps the golden tolerance on every device. A
// bfloat16 model is checked op by op instead of end to end: every op of every layer, the final norm
// and the LM head run in bfloat16 on the float32 model's activations for the golden sequences and
// must stay within the bound that float32 accumulation and bf16 rounding allow on the op's own bf16
// inputs (tests/model/bf16_bounds.h derives each, u = 2^-8: a length-k matmul gets
// gamma_k·sum|a||b| + 2u·|result|; RoPE, softmax, SiLU propagate the rounding of their
// intermediate results). The whole-model bf16 difference is printed for information. The key-mask and KV-cache paths are the same code in
// every dtype; a bfloat16 run checks them in float32 on the test device at the golden tolerance.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>

#include "safekey/model/decoder.h"
#include "safekey/model/tensor_io.h"
#include "safekey/util/file.h"
#include "safekey/util/json.h"
#include "model/bf16_bounds.h"
#include "model/forward_input.h"
#include "support/support.h"

using namespace safekey;
using namespace safekey::model;

namespace {

using safekey::test::env_or;
using safekey::test::fwd_in;

torch::Device test_device() { return torch::Device(env_or("SAFEKEY_TEST_DEVICE", "cpu")); }
torch::ScalarType test_dtype() {
  const std::string d = env_or("SAFEKEY_TEST_DTYPE", "float32");
  if (d == "bfloat16") return torch::kBFloat16;
  if (d != "float32") throw std::runtime_error("SAFEKEY_TEST_DTYPE must be float32 or bfloat16, got " + d);
  return torch::kFloat32;
}
bool reduced_precision() { return test_dtype() != torch::kFloat32; }
constexpr double kAtol = 1e-4, kRtol = 1e-5;

// The model on the test device and dtype; inputs follow it, outputs come back as float32 on the CPU.
DecoderModel load_for_test(const std::string& dir) { return load_model(dir, test_dtype(), test_device()); }
torch::Tensor on_device(const torch::Tensor& t) { return t.to(test_device()); }
torch::Tensor host(const torch::Tensor& t) { return t.to(torch::kCPU, torch::kFloat); }

torch::Tensor matrix(const json& rows) {  // [[..], ..] -> float32 [R, C]
  std::vector<float> flat;
  int64_t r = 0, c = -1;
  for (const auto& row : rows) {
    if (c < 0) c = static_cast<int64_t>(row.size());
    for (const auto& v : row) flat.push_back(static_cast<float>(v.get<double>()));
    ++r;
  }
  return torch::from_blob(flat.data(), {r, c}, torch::kFloat).clone();
}

torch::Tensor ids_tensor(const json& ids) {
  std::vector<int64_t> v = ids.get<std::vector<int64_t>>();
  return torch::from_blob(v.data(), {1, static_cast<int64_t>(v.size())}, torch::kLong).clone();
}

// Checks |a-b| <= atol + rtol|b| elementwise (float32 results) and reports the max difference.
void expect_close(const torch::Tensor& got, const torch::Tensor& b, const std::string& what) {
  torch::Tensor a = host(got);
  ASSERT_EQ(a.sizes(), b.sizes()) << what;
  torch::Tensor diff = (a.to(torch::kDouble) - b.to(torch::kDouble)).abs();
  const double scale = b.abs().max().item<double>();
  torch::Tensor bound = kAtol + kRtol * b.to(torch::kDouble).abs();
  double max_diff = diff.max().item<double>();
  int64_t bad = (diff > bound).sum().item<int64_t>();
  std::printf("  %-40s max|diff| = %.3g = %.4f max|b|  (%s, float32)\n", what.c_str(), max_diff,
              max_diff / std::max(scale, 1e-30), test_device().str().c_str());
  EXPECT_EQ(bad, 0) << what << ": " << bad << " values outside the tolerance (max |diff| " << max_diff
                    << ", max|b| " << scale << ")";
  EXPECT_TRUE(torch::isfinite(a).all().item<bool>()) << what;
}

class Golden : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = path_join(test::golden_dir(), GetParam());
    SAFEKEY_REQUIRE_DIR(dir_);
  }
  std::string dir_;
};

// bfloat16: every op within its rounding bound on the float32 model's activations (see the top).
void check_bf16_ops(const std::string& dir, const std::string& name, const json& cases) {
  namespace b16 = safekey::test::bf16;
  DecoderModel m32 = load_model(dir);  // float32, CPU: the activations and the reference weights
  DecoderModel m16 = load_for_test(dir);
  const ModelConfig& cfg = m32->config();
  torch::NoGradGuard ng;
  for (const auto& c : cases["cases"]) {
    const std::string what = name + " " + c["name"].get<std::string>();
    const torch::Tensor ids = ids_tensor(c["input_ids"]);
    const int64_t T = ids.size(1);
    // The float32 layers run one by one to produce each layer's input.
    ForwardInput probe;
    probe.input_ids = ids;
    probe.compute_logits = false;
    torch::Tensor x = torch::embedding(b16::module_at<EmbeddingImpl>(*m32, "model.embed_tokens")->weight, ids);
    AttentionContext ctx32;
    ctx32.rope = rope_tables(rope_inv_freq(cfg), torch::arange(T, torch::kLong).view({1, T}), torch::kFloat);
    ctx32.mask = torch::full({T, T}, std::numeric_limits<float>::lowest()).triu(1).view({1, 1, T, T});
    for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) {
      auto l32 = b16::module_at<DecoderLayerImpl>(*m32, "model.layers." + std::to_string(l));
      auto l16 = b16::module_at<DecoderLayerImpl>(*m16, "model.layers." + std::to_string(l));
      ASSERT_TRUE(l32 && l16);
      for (const auto& r : b16::check_layer(*l16, cfg, x, what + " layer " + std::to_string(l)))
        EXPECT_EQ(r.violations, 0) << r.what << ": worst |diff|/bound " << r.worst_ratio;
      x = l32->forward(x, ctx32);
    }
    // The chain reproduces the model's float32 hidden states (so the ops above saw the real inputs).
    auto n32 = b16::module_at<RMSNormImpl>(*m32, "model.norm"), n16 = b16::module_at<RMSNormImpl>(*m16, "model.norm");
    EXPECT_LT((n32->forward(x) - m32->forward(probe).hidden).abs().max().item<double>(), 1e-5) << what;
    const auto nb = b16::rmsnorm_bound(x, n16->weight, cfg.rms_norm_eps);
    EXPECT_EQ(b16::compare(what + " final norm", n16->forward(on_device(x).to(torch::kBFloat16)), nb.ref, nb.bound).violations, 0);
    const torch::Tensor h = n32->forward(x);
    const torch::Tensor head_w = cfg.tie_word_embeddings ? b16::module_at<EmbeddingImpl>(*m16, "model.embed_tokens")->weight
                                                         : b16::module_at<LinearImpl>(*m16, "lm_head")->weight;
    const auto lb = b16::linear_bound(h, head_w, {});
    EXPECT_EQ(b16::compare(what + " lm_head", m16->lm_head_logits(on_device(h).to(torch::kBFloat16)), lb.ref, lb.bound).violations, 0);
    // For information: the whole bf16 model against HF's float32 logits.
    ForwardInput in;
    in.input_ids = on_device(ids);
    const torch::Tensor logits = host(m16->forward(in).logits[0]), want = matrix(c["logits"]);
    std::printf("  %-40s whole-model bf16 max|diff| = %.3g (max|b| %.3g)\n", (what + " logits").c_str(),
                (logits - want).abs().max().item<double>(), want.abs().max().item<double>());
  }
}

TEST_P(Golden, LogitsAndHiddenStatesMatchHF) {
  if (reduced_precision()) {
    check_bf16_ops(dir_, GetParam(), read_json_file(path_join(dir_, "cases.json")));
    return;
  }
  DecoderModel m = load_for_test(dir_);
  json cases = read_json_file(path_join(dir_, "cases.json"));
  torch::NoGradGuard ng;
  for (const auto& c : cases["cases"]) {
    std::string name = c["name"];
    ForwardInput in;
    in.input_ids = on_device(ids_tensor(c["input_ids"]));
    ForwardOutput out = m->forward(in);
    expect_close(out.logits[0], matrix(c["logits"]), GetParam() + " " + name + " logits");
    expect_close(out.hidden[0], matrix(c["final_hidden_states"]),
                 GetParam() + " " + name + " final hidden");
  }
}

TEST_P(Golden, KeyMaskedLogitsFromPosition7) {
  DecoderModel m = load_model(dir_, torch::kFloat32, test_device());
  json cases = read_json_file(path_join(dir_, "cases.json"));
  torch::NoGradGuard ng;
  int checked = 0;
  for (const auto& c : cases["cases"]) {
    if (!c.contains("masked")) continue;
    const json& mk = c["masked"];
    std::vector<int64_t> mask = mk["attention_mask"].get<std::vector<int64_t>>();
    ForwardInput in;
    in.input_ids = on_device(ids_tensor(c["input_ids"]));
    in.key_mask = on_device(torch::tensor(mask).view({1, -1}));
    in.position_ids = on_device(ids_tensor(mk["position_ids"]));
    ForwardOutput out = m->forward(in);
    int64_t first = mk["first_reported_position"];
    torch::Tensor got = out.logits[0].narrow(0, first, out.logits.size(1) - first);
    expect_close(got, matrix(mk["logits_from_pos7"]), GetParam() + " masked logits pos>=7");
    // Rows whose keys are all hidden stay finite (golden README quirk 1).
    EXPECT_TRUE(torch::isfinite(out.logits).all().item<bool>());
    ++checked;
  }
  EXPECT_EQ(checked, 1);
}

TEST_P(Golden, IncrementalDecodingMatchesFullForward) {
  DecoderModel m = load_model(dir_, torch::kFloat32, test_device());
  json cases = read_json_file(path_join(dir_, "cases.json"));
  torch::NoGradGuard ng;
  torch::Tensor ids = on_device(ids_tensor(cases["cases"][2]["input_ids"]));  // len40
  const int64_t T = ids.size(1);
  torch::Tensor full = m->forward(fwd_in(ids)).logits[0];  // [T, V]
  // Prefill 11 tokens, then a chunk of 5, then one token at a time.
  KVCache cache;
  std::vector<torch::Tensor> parts;
  int64_t t = 0;
  for (int64_t len : {int64_t{11}, int64_t{5}}) {
    ForwardInput in;
    in.input_ids = ids.narrow(1, t, len);
    in.cache = &cache;
    parts.push_back(m->forward(in).logits[0]);
    t += len;
  }
  for (; t < T; ++t) {
    ForwardInput in;
    in.input_ids = ids.narrow(1, t, 1);
    in.cache = &cache;
    parts.push_back(m->forward(in).logits[0]);
  }
  EXPECT_EQ(cache.length(), T);
  torch::Tensor inc = host(torch::cat(parts, 0)), full_h = host(full);
  expect_close(inc, full_h, GetParam() + " kv-cache vs full logits");
  double max_diff = (inc - full_h).abs().max().item<double>();
  EXPECT_LT(max_diff, 2e-5);  // same float32 math, only the accumulation order differs
}

TEST_P(Golden, LoadSaveLoadIsBitIdentical) {
  DecoderModel a = load_model(dir_);
  std::string out1 = test::make_temp_dir("golden_rt") + "/m";
  save_model(a, out1);
  DecoderModel b = load_model(out1);
  auto pa = a->hf_named_parameters(), pb = b->hf_named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_EQ(pa[i].first, pb[i].first);
    EXPECT_TRUE(torch::equal(pa[i].second, pb[i].second)) << pa[i].first;
  }
  EXPECT_EQ(a->config().to_json(), b->config().to_json());
  // The weights file is byte-identical to the one HF's save_pretrained wrote.
  EXPECT_TRUE(read_file(path_join(out1, "model.safetensors")) ==
              read_file(path_join(dir_, "model.safetensors")));
  // config.json is written as HF writes it (sorted keys, indent 2): same text.
  EXPECT_EQ(read_file(path_join(out1, "config.json")), read_file(path_join(dir_, "config.json")));
  // Sharded save (tiny shards) loads back identically too.
  std::string out2 = test::make_temp_dir("golden_rt") + "/sharded";
  save_model(b, out2, /*max_shard_bytes=*/100'000);
  EXPECT_TRUE(path_exists(path_join(out2, "model.safetensors.index.json")));
  EXPECT_FALSE(path_exists(path_join(out2, "model.safetensors")));
  DecoderModel c = load_model(out2);
  auto pc = c->hf_named_parameters();
  for (size_t i = 0; i < pa.size(); ++i)
    EXPECT_TRUE(torch::equal(pa[i].second, pc[i].second)) << pa[i].first;
}

INSTANTIATE_TEST_SUITE_P(Models, Golden, ::testing::Values("qwen2", "llama", "qwen3"),
                         [](const auto& info) { return info.param; });

}  // namespace
