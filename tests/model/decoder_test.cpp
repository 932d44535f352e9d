// Decoder properties on small random models (deterministic init): batched KV cache, explicit
// position ids (the trainer's sub-range pass), key masks, gradient checkpointing, bf16 per-op
// rounding bounds, init.
#include <gtest/gtest.h>

#include "safekey/model/decoder.h"
#include "safekey/util/error.h"
#include "model/bf16_bounds.h"
#include "model/forward_input.h"
#include "support/support.h"

using namespace safekey;
using namespace safekey::model;

namespace {

using safekey::test::fwd_in;

ModelConfig tiny(const std::string& arch) {
  json j = {{"architectures", {arch}},  {"vocab_size", 97},        {"hidden_size", 48},
            {"intermediate_size", 80},  {"num_hidden_layers", 2},  {"num_attention_heads", 6},
            {"num_key_value_heads", 2}, {"rms_norm_eps", 1e-6},    {"rope_theta", 10000.0},
            {"tie_word_embeddings", arch == "Qwen3ForCausalLM"}};
  if (arch == "LlamaForCausalLM")
    j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                         {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 16}};
  if (arch == "Qwen3ForCausalLM") j["head_dim"] = 16;
  return ModelConfig::from_json(j, "tiny");
}

// A model with weights large enough that attention is far from uniform.
DecoderModel make(const std::string& arch, uint64_t seed = 7) {
  ModelConfig cfg = tiny(arch);
  cfg.initializer_range = 0.2;
  DecoderModel m(cfg);
  init_weights(m, seed);
  torch::manual_seed(seed);
  torch::NoGradGuard ng;
  for (auto& [name, p] : m->hf_named_parameters())
    if (name.find("norm.weight") != std::string::npos) p.uniform_(0.5, 1.5);
  return m;
}

torch::Tensor random_ids(int64_t B, int64_t T, int64_t V, int64_t seed) {
  torch::manual_seed(seed);
  return torch::randint(0, V, {B, T}, torch::kLong);
}

double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

class Arch : public ::testing::TestWithParam<std::string> {};

TEST_P(Arch, BatchedKVCacheWithLeftPaddingMatchesFullForward) {
  DecoderModel m = make(GetParam());
  torch::NoGradGuard ng;
  const int64_t T = 12;
  torch::Tensor ids = random_ids(2, T, 97, 1);
  // Row 1 is left-padded by 3: its keys are hidden and its positions start at 0 after the pad.
  torch::Tensor key_mask = torch::ones({2, T}, torch::kLong);
  key_mask[1].narrow(0, 0, 3).zero_();
  torch::Tensor pos = torch::arange(T).repeat({2, 1});
  pos[1] = (torch::arange(T) - 3).clamp_min(0);
  ForwardInput full_in = fwd_in(ids, pos, key_mask);
  torch::Tensor full = m->forward(full_in).logits;  // [2, T, V]
  // Row 1 alone, unpadded, gives the same logits at its real tokens.
  torch::Tensor alone = m->forward(fwd_in(ids[1].narrow(0, 3, T - 3).unsqueeze(0))).logits[0];
  EXPECT_LT(max_diff(full[1].narrow(0, 3, T - 3), alone), 1e-5);
  // Prefill 5, then one token at a time with a growing key mask.
  KVCache cache;
  std::vector<torch::Tensor> parts;
  ForwardInput pre = fwd_in(ids.narrow(1, 0, 5), pos.narrow(1, 0, 5), key_mask.narrow(1, 0, 5), &cache);
  parts.push_back(m->forward(pre).logits);
  for (int64_t t = 5; t < T; ++t) {
    ForwardInput step = fwd_in(ids.narrow(1, t, 1), pos.narrow(1, t, 1), key_mask.narrow(1, 0, t + 1), &cache);
    step.logits_positions = torch::zeros({2, 1}, torch::kLong);
    parts.push_back(m->forward(step).logits);
  }
  torch::Tensor inc = torch::cat(parts, 1);
  // Pad rows (all keys hidden) are finite but depend on how many keys exist: skip them.
  EXPECT_LT(max_diff(inc[0], full[0]), 1e-5);
  EXPECT_LT(max_diff(inc[1].narrow(0, 3, T - 3), full[1].narrow(0, 3, T - 3)), 1e-5);
  EXPECT_TRUE(torch::isfinite(full).all().item<bool>());  // padded rows see no key: finite
  // Dropping a finished row keeps the other's cache.
  cache.select_rows(torch::tensor({int64_t{1}}));
  EXPECT_EQ(cache.rows(), 1);
}

// Logits of row `ids` [T] alone, without a cache: [T, V].
torch::Tensor alone(DecoderModel& m, const torch::Tensor& ids) { return m->forward(fwd_in(ids.unsqueeze(0))).logits[0]; }

// Three sequences of different lengths prefilled into slots 2, 0, 1 of one cache, then decoded
// together (ragged: each row appends at its own length) equal each sequence run alone.
// Catches: one write column for all rows, a mask or positions taken from the longest row instead of
// each row's length, slots mixed up (rows read another slot's keys), stale keys of a padded prefill
// left visible.
TEST_P(Arch, SlotCacheDecodesRowsOfDifferentLengthsTogether) {
  DecoderModel m = make(GetParam());
  torch::NoGradGuard ng;
  const std::vector<int64_t> lens = {3, 9, 5};
  const std::vector<int64_t> slot = {2, 0, 1};
  const int64_t steps = 4;
  std::vector<torch::Tensor> seqs;
  for (size_t i = 0; i < lens.size(); ++i) seqs.push_back(random_ids(1, lens[i] + steps, 97, 10 + i)[0]);
  KVCache cache;
  cache.reserve(3, 32, 32);
  // Prefill rows 0 and 2 together, right-padded to 5 (row 0's padding lies beyond its length and is
  // given back with set_length), row 1 alone.
  {
    torch::Tensor ids = torch::zeros({2, 5}, torch::kLong);
    ids[0].narrow(0, 0, 3).copy_(seqs[0].narrow(0, 0, 3));
    ids[1].copy_(seqs[2].narrow(0, 0, 5));
    ForwardInput in = fwd_in(ids, {}, {}, &cache);
    in.cache_slots = {slot[0], slot[2]};
    m->forward(in);
    cache.set_length(slot[0], 3);
    ForwardInput one = fwd_in(seqs[1].narrow(0, 0, 9).unsqueeze(0), {}, {}, &cache);
    one.cache_slots = {slot[1]};
    m->forward(one);
  }
  EXPECT_EQ(cache.length(slot[0]), 3);
  EXPECT_EQ(cache.length(slot[1]), 9);
  EXPECT_EQ(cache.length(slot[2]), 5);
  const void* storage = cache.key_storage(0).data_ptr();
  for (int64_t t = 0; t < steps; ++t) {
    torch::Tensor ids = torch::empty({3, 1}, torch::kLong);
    for (size_t i = 0; i < 3; ++i) ids[static_cast<int64_t>(i)][0] = seqs[i][lens[i] + t];
    ForwardInput in = fwd_in(ids, {}, {}, &cache);  // positions from the slots' lengths
    in.cache_slots = slot;
    torch::Tensor got = m->forward(in).logits;  // [3, 1, V]
    for (size_t i = 0; i < 3; ++i) {
      torch::Tensor want = alone(m, seqs[i].narrow(0, 0, lens[i] + t + 1))[lens[i] + t];
      EXPECT_LT(max_diff(got[static_cast<int64_t>(i)][0], want), 1e-5) << "row " << i << " step " << t;
    }
  }
  // Appending wrote in place: the storage was allocated once.
  EXPECT_EQ(cache.key_storage(0).data_ptr(), storage);
  EXPECT_EQ(cache.length(slot[1]), 9 + steps);
  // A row moved to another slot carries its keys: decoding it there continues the same sequence.
  cache.set_length(slot[2], 0);
  cache.move_slot(slot[1], slot[2]);
  EXPECT_EQ(cache.length(slot[2]), 9 + steps);
  EXPECT_EQ(cache.length(slot[1]), 0);
  torch::Tensor next = random_ids(1, 1, 97, 99);
  ForwardInput in = fwd_in(next, {}, {}, &cache);
  in.cache_slots = {slot[2]};
  torch::Tensor got = m->forward(in).logits[0][0];
  torch::Tensor whole = torch::cat({seqs[1], next[0]});
  EXPECT_LT(max_diff(got, alone(m, whole)[9 + steps]), 1e-5);
}

// Without reserve() the storage grows by doubling as tokens are appended (the batch-at-a-time use),
// keeping its content; a fixed maximum is an error naming both numbers.
// Catches: growth that drops or shifts cached keys, reallocation on every append (the O(S^2) copy),
// a silent overflow past the maximum.
TEST_P(Arch, CacheGrowsByDoublingAndStopsAtItsMaximum) {
  DecoderModel m = make(GetParam());
  torch::NoGradGuard ng;
  torch::Tensor ids = random_ids(2, 40, 97, 5);
  KVCache cache;
  torch::Tensor full = m->forward(fwd_in(ids)).logits;  // [2, 40, V]
  int reallocations = 0;
  const void* last = nullptr;
  for (int64_t t = 0; t < 40; ++t) {
    torch::Tensor got = m->forward(fwd_in(ids.narrow(1, t, 1), {}, {}, &cache)).logits;
    EXPECT_LT(max_diff(got.select(1, 0), full.select(1, t)), 1e-5) << "step " << t;
    if (cache.key_storage(0).data_ptr() != last) ++reallocations, last = cache.key_storage(0).data_ptr();
  }
  EXPECT_EQ(cache.length(), 40);
  EXPECT_EQ(cache.capacity(), 64);
  EXPECT_EQ(reallocations, 3);  // 16, 32, 64 columns
  KVCache small;
  small.reserve(1, 0, 8);
  try {
    m->forward(fwd_in(random_ids(1, 9, 97, 6), {}, {}, &small));
    FAIL() << "appending 9 positions to a cache of at most 8 must fail";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("9 positions needed"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("at most 8"), std::string::npos) << e.what();
  }
}

TEST_P(Arch, SubRangeWithOriginalPositionsEqualsMaskedFullPass) {
  // SPEC 4: with the query hidden as keys, positions after it only depend on tokens [q, T), so
  // running just that range with the original position ids gives the same logits.
  DecoderModel m = make(GetParam());
  torch::NoGradGuard ng;
  const int64_t T = 16, q = 6;
  torch::Tensor ids = random_ids(1, T, 97, 2);
  torch::Tensor mask = torch::ones({1, T}, torch::kLong);
  mask.narrow(1, 0, q).zero_();
  torch::Tensor full = m->forward(fwd_in(ids, {}, mask)).logits[0].narrow(0, q, T - q);
  ForwardInput sub = fwd_in(ids.narrow(1, q, T - q), torch::arange(q, T).unsqueeze(0));
  torch::Tensor part = m->forward(sub).logits[0];
  EXPECT_LT(max_diff(full, part), 1e-5);
  // The position ids are used: RoPE is relative, so a uniform shift changes nothing, but
  // stretched positions change the logits.
  EXPECT_LT(max_diff(part, m->forward(fwd_in(ids.narrow(1, q, T - q))).logits[0]), 1e-4);
  ForwardInput stretched = fwd_in(ids.narrow(1, q, T - q), torch::arange(q, T).unsqueeze(0) * 2);
  EXPECT_GT(max_diff(part, m->forward(stretched).logits[0]), 1e-3);
}

TEST_P(Arch, GradientCheckpointingGivesTheSameGradients) {
  DecoderModel m = make(GetParam());
  m->train();
  torch::Tensor ids = random_ids(2, 10, 97, 3);
  torch::Tensor mask = torch::ones({2, 10}, torch::kLong);
  mask[0].narrow(0, 0, 4).zero_();
  auto run = [&](bool ckpt) {
    m->set_gradient_checkpointing(ckpt);
    m->zero_grad();
    ForwardOutput out = m->forward(fwd_in(ids, {}, mask));
    torch::Tensor loss = torch::nn::functional::cross_entropy(
                             out.logits.reshape({-1, 97}), ids.roll(-1, 1).reshape(-1)) +
                         out.hidden.pow(2).mean();
    loss.backward();
    std::vector<torch::Tensor> g;
    for (auto& [n, p] : m->hf_named_parameters()) g.push_back(p.grad().clone());
    return std::make_pair(loss.item<double>(), g);
  };
  auto [l0, g0] = run(false);
  auto [l1, g1] = run(true);
  EXPECT_EQ(l0, l1);
  ASSERT_EQ(g0.size(), g1.size());
  for (size_t i = 0; i < g0.size(); ++i) {
    ASSERT_TRUE(g1[i].defined());
    EXPECT_TRUE(torch::equal(g0[i], g1[i])) << i << " max diff " << max_diff(g0[i], g1[i]);
  }
}

// Every op of the bfloat16 model (both layers' norms, q/k/v/o projections, q/k norms, attention
// probabilities and output, MLP projections and output; final norm; LM head) against a float64
// reference of the op's definition on the op's own bf16 inputs, within the bound that float32
// accumulation and bf16 rounding of its results allow (tests/model/bf16_bounds.h derives each).
// Catches a bf16 path that loses precision beyond rounding (a norm's variance, the softmax or the
// RoPE tables computed in bf16) and any op that differs from its definition in every dtype. The
// same checks fail on a transposed weight and on attention without its 1/sqrt(head_dim) scale
// (shown at the end).
TEST_P(Arch, Bfloat16OpsStayWithinTheirRoundingBounds) {
  namespace b16 = safekey::test::bf16;
  DecoderModel m32 = make(GetParam()), m16 = make(GetParam());
  m16->to(torch::kBFloat16);
  const ModelConfig& cfg = m32->config();
  torch::NoGradGuard ng;
  const std::string arch = GetParam().substr(0, 5);
  for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) {
    torch::manual_seed(100 + l);
    const torch::Tensor x = torch::randn({1, 9, cfg.hidden_size});  // the layer's input [1, T, H]
    auto l16 = b16::module_at<DecoderLayerImpl>(*m16, "model.layers." + std::to_string(l));
    ASSERT_TRUE(l16);
    for (const auto& c : b16::check_layer(*l16, cfg, x, arch + " layer " + std::to_string(l)))
      EXPECT_EQ(c.violations, 0) << c.what << ": worst |diff|/bound " << c.worst_ratio;
  }
  torch::manual_seed(7);
  const torch::Tensor h = torch::randn({1, 9, cfg.hidden_size});
  auto n16 = b16::module_at<RMSNormImpl>(*m16, "model.norm");
  ASSERT_TRUE(n16);
  const auto nb = b16::rmsnorm_bound(h, n16->weight, cfg.rms_norm_eps);
  EXPECT_EQ(b16::compare(arch + " final norm", n16->forward(h.to(torch::kBFloat16)), nb.ref, nb.bound).violations, 0);
  const torch::Tensor head_w = cfg.tie_word_embeddings ? b16::module_at<EmbeddingImpl>(*m16, "model.embed_tokens")->weight
                                                       : b16::module_at<LinearImpl>(*m16, "lm_head")->weight;
  const auto lb = b16::linear_bound(h, head_w, {});
  EXPECT_EQ(b16::compare(arch + " lm_head", m16->lm_head_logits(h.to(torch::kBFloat16)), lb.ref, lb.bound).violations, 0);

  // Wrong implementations fail the same bounds: attention scored without 1/sqrt(head_dim) (here:
  // the reference without it, against the module with it) and a projection with W transposed.
  auto l16 = b16::module_at<DecoderLayerImpl>(*m16, "model.layers.0");
  torch::manual_seed(100);
  const torch::Tensor x = torch::randn({1, 9, cfg.hidden_size});
  int64_t probs_over = -1;
  for (const auto& c : b16::check_attention(*l16->self_attn, cfg, x, "(reference without the scale)", 1.0))
    if (c.what.find("probs") != std::string::npos) probs_over = c.violations;
  EXPECT_GT(probs_over, 0) << "a missing 1/sqrt(head_dim) would pass";
  const torch::Tensor W = l16->mlp->up_proj->weight;  // [I, H]
  const torch::Tensor Wsq = W.narrow(0, 0, W.size(1));   // a square block [H, H]
  const auto ref = b16::linear_bound(x, Wsq, {});
  const torch::Tensor wrong = torch::linear(x.to(torch::kBFloat16), Wsq.t());
  EXPECT_GT(b16::compare("(a weight transposed)", wrong, ref.ref, ref.bound).violations, 0)
      << "a transposed weight would pass";
  // For information: the whole model's bf16 logits against float32.
  torch::Tensor ids = random_ids(1, 9, 97, 4);
  const torch::Tensor ref_logits = m32->forward(fwd_in(ids)).logits, out = m16->forward(fwd_in(ids)).logits;
  EXPECT_EQ(out.scalar_type(), torch::kBFloat16);
  std::printf("  %s whole model bf16 vs fp32 logits: max|diff| %.3g (max |logit| %.3g)\n", GetParam().c_str(),
              max_diff(out, ref_logits), ref_logits.abs().max().item<double>());
}

INSTANTIATE_TEST_SUITE_P(All, Arch,
                         ::testing::Values("Qwen2ForCausalLM", "LlamaForCausalLM", "Qwen3ForCausalLM"),
                         [](const auto& info) { return info.param.substr(0, 5); });

TEST(Decoder, InitIsDeterministicAndHFShaped) {
  DecoderModel a = make("Qwen2ForCausalLM", 11), b = make("Qwen2ForCausalLM", 11),
               c = make("Qwen2ForCausalLM", 12);
  auto pa = a->hf_named_parameters(), pb = b->hf_named_parameters(), pc = c->hf_named_parameters();
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i].second, pb[i].second));
  EXPECT_FALSE(torch::equal(pa[0].second, pc[0].second));
  ModelConfig cfg = tiny("Qwen2ForCausalLM");
  DecoderModel d(cfg);
  init_weights(d, 5);
  for (auto& [name, p] : d->hf_named_parameters()) {
    if (name.find("norm.weight") != std::string::npos) EXPECT_TRUE(p.eq(1).all().item<bool>()) << name;
    else if (name.find(".bias") != std::string::npos) EXPECT_TRUE(p.eq(0).all().item<bool>()) << name;
    else EXPECT_NEAR(p.std().item<double>(), 0.02, 0.004) << name;
  }
  // Module names are the HF names, in HF's order.
  auto shapes = cfg.parameter_shapes();
  auto params = d->hf_named_parameters();
  ASSERT_EQ(shapes.size(), params.size());
  for (size_t i = 0; i < shapes.size(); ++i) {
    EXPECT_EQ(shapes[i].name, params[i].first);
    EXPECT_EQ(torch::IntArrayRef(shapes[i].shape), params[i].second.sizes());
  }
  EXPECT_EQ(cfg.num_parameters(), [&] {
    int64_t n = 0;
    for (auto& kv : params) n += kv.second.numel();
    return n;
  }());
}

TEST(Decoder, OutOfVocabularyIdIsAnError) {
  DecoderModel m = make("Qwen2ForCausalLM");
  torch::NoGradGuard ng;
  EXPECT_THROW(m->forward(fwd_in(torch::tensor({int64_t{1}, int64_t{97}}).view({1, 2}))), Error);
}

}  // namespace
