// LoRA adapters on the decoder's Linear modules (model/adapter.h), against the merged model
// W' = W + scale·B·A that PEFT's merge produces, on tiny random Qwen2 / Llama / Qwen3 models.
#include <gtest/gtest.h>

#include "safekey/model/adapter.h"
#include "safekey/model/decoder.h"
#include "model/forward_input.h"
#include "support/support.h"

using namespace safekey;
using namespace safekey::model;

namespace {

using safekey::test::fwd_in;

ModelConfig tiny(const std::string& arch) {
  json j = {{"architectures", {arch}},  {"vocab_size", 97},       {"hidden_size", 48},
            {"intermediate_size", 80},  {"num_hidden_layers", 2}, {"num_attention_heads", 6},
            {"num_key_value_heads", 2}, {"rms_norm_eps", 1e-6},   {"rope_theta", 10000.0},
            {"tie_word_embeddings", arch == "Qwen3ForCausalLM"},  {"initializer_range", 0.2}};
  if (arch == "Qwen3ForCausalLM") j["head_dim"] = 16;
  return ModelConfig::from_json(j, "tiny");
}

DecoderModel make(const std::string& arch) {
  DecoderModel m(tiny(arch));
  init_weights(m, 5);
  return m;
}

bool attn_and_mlp(const std::string& path) { return path != "lm_head"; }

// B is zero at initialisation; a trained adapter is not: give B random values.
void randomise_b(DecoderModel& m, uint64_t seed) {
  torch::manual_seed(static_cast<int64_t>(seed));
  torch::NoGradGuard ng;
  for (auto& [name, p] : lora_parameters(m))
    if (name.find(".lora_B.") != std::string::npos) p.normal_(0.0, 0.05);
}

torch::Tensor ids(int64_t B, int64_t T) {
  torch::manual_seed(3);
  return torch::randint(0, 97, {B, T}, torch::kLong);
}

class Arch : public ::testing::TestWithParam<std::string> {};

// Catches: an adapter that changes the output at initialisation (B not zero, or a wrong residual).
TEST_P(Arch, FreshAdapterChangesNothing) {
  DecoderModel base = make(GetParam()), adapted = make(GetParam());
  add_lora(adapted, attn_and_mlp, {4, 2.0, 0.0}, 1);
  torch::NoGradGuard ng;
  auto x = ids(2, 9);
  EXPECT_TRUE(torch::equal(base->forward(fwd_in(x)).logits, adapted->forward(fwd_in(x)).logits));
}

// Catches: a wrong scale (alpha/r), A and B swapped or transposed, the adapter applied to the
// output instead of the input, or a target missed.
TEST_P(Arch, AdapterEqualsMergedWeights) {
  DecoderModel m = make(GetParam());
  const auto paths = add_lora(m, attn_and_mlp, {4, 2.5, 0.0}, 1);
  randomise_b(m, 9);
  DecoderModel merged = make(GetParam());
  {
    torch::NoGradGuard ng;
    std::map<std::string, torch::Tensor> lin;
    for (auto& [path, l] : linear_modules(merged)) lin[path] = l->weight;
    for (auto& [path, l] : linear_modules(m)) {
      if (!l->has_lora()) continue;
      lin.at(path).add_(torch::matmul(l->lora_B(), l->lora_A()) * 2.5);
    }
  }
  EXPECT_EQ(paths.size(), 7u * 2u);  // q k v o gate up down in each of the 2 layers
  torch::NoGradGuard ng;
  auto x = ids(2, 11);
  auto a = m->forward(fwd_in(x)).logits, b = merged->forward(fwd_in(x)).logits;
  const double rel = ((a - b).abs().max() / b.abs().max()).item<double>();
  EXPECT_LE(rel, 1e-5);
  EXPECT_GT((a - make(GetParam())->forward(fwd_in(x)).logits).abs().max().item<double>(), 1e-3)
      << "the random B should change the output";
}

// Catches: base weights left trainable (they would get gradients), adapters outside the targets,
// and adapters listed among the checkpoint's HF tensors.
TEST_P(Arch, OnlyAdaptersReceiveGradients) {
  DecoderModel m = make(GetParam());
  const auto hf_before = m->hf_named_parameters().size();
  add_lora(m, [](const std::string& p) { return p.find("q_proj") != std::string::npos || p.find("down_proj") != std::string::npos; },
           {2, 4.0, 0.0}, 1);
  EXPECT_EQ(m->hf_named_parameters().size(), hf_before);
  EXPECT_EQ(lora_parameters(m).size(), 2u * 2u * 2u);
  randomise_b(m, 2);
  auto out = m->forward(fwd_in(ids(2, 7))).logits;
  out.pow(2).mean().backward();
  for (auto& [name, p] : m->hf_named_parameters()) EXPECT_FALSE(p.grad().defined()) << name;
  for (auto& [name, p] : lora_parameters(m)) {
    ASSERT_TRUE(p.grad().defined()) << name;
    EXPECT_GT(p.grad().abs().sum().item<double>(), 0.0) << name;
  }
}

// Catches: a recompute in backward that draws other dropout masks than the forward did (the
// gradients would differ from the stored-activation run), and checkpointing that drops adapter grads.
TEST_P(Arch, DropoutWithGradientCheckpointingMatchesThePlainPath) {
  std::vector<std::vector<torch::Tensor>> grads;
  for (bool ckpt : {false, true}) {
    DecoderModel m = make(GetParam());
    add_lora(m, attn_and_mlp, {4, 2.0, 0.3}, 1);
    randomise_b(m, 4);
    m->train();
    m->set_gradient_checkpointing(ckpt);
    torch::manual_seed(77);
    m->forward(fwd_in(ids(2, 8))).logits.pow(2).mean().backward();
    std::vector<torch::Tensor> g;
    for (auto& [name, p] : lora_parameters(m)) g.push_back(p.grad().clone());
    grads.push_back(g);
  }
  ASSERT_EQ(grads[0].size(), grads[1].size());
  for (size_t i = 0; i < grads[0].size(); ++i)
    EXPECT_TRUE(torch::allclose(grads[0][i], grads[1][i], 1e-5, 1e-7)) << i;
}

INSTANTIATE_TEST_SUITE_P(Families, Arch, ::testing::Values("Qwen2ForCausalLM", "LlamaForCausalLM", "Qwen3ForCausalLM"));

// Catches: PEFT's initialisation not followed (A must be U(-1/sqrt(in), 1/sqrt(in)), B zero).
TEST(Lora, InitialisationFollowsPeft) {
  DecoderModel m = make("Qwen2ForCausalLM");
  add_lora(m, attn_and_mlp, {8, 8.0, 0.0}, 3);
  for (auto& [path, l] : linear_modules(m)) {
    if (!l->has_lora()) continue;
    const double bound = 1.0 / std::sqrt(static_cast<double>(l->weight.size(1)));
    EXPECT_LE(l->lora_A().abs().max().item<double>(), bound) << path;
    EXPECT_GT(l->lora_A().abs().max().item<double>(), 0.8 * bound) << path;
    EXPECT_EQ(l->lora_A().scalar_type(), torch::kFloat32);
    EXPECT_EQ(l->lora_B().abs().max().item<double>(), 0.0) << path;
  }
}

}  // namespace
