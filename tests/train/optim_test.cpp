// AdamW against libtorch's own torch::optim::AdamW (the same update as torch.optim.AdamW), the
// cosine-with-warm-up schedule against transformers' formula, the parameter groups (default and
// --reference-compat), gradient clipping, and the optimizer state round trip.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "safekey/io/safetensors.h"
#include "safekey/train/optim.h"
#include "safekey/util/file.h"
#include "support/support.h"
#include "train/tiny.h"

using namespace safekey;
using namespace safekey::train;

namespace {

TEST(AdamW, MatchesLibtorchAdamWWithParamGroups) {
  torch::manual_seed(3);
  auto a = torch::randn({5, 4}), b = torch::randn({4});
  auto a_ref = a.clone().requires_grad_(true), b_ref = b.clone().requires_grad_(true);
  a.requires_grad_(true);
  b.requires_grad_(true);
  std::vector<ParamGroup> groups = {{"decay", 0.1, {{"a", a}}}, {"no_decay", 0.0, {{"b", b}}}};
  AdamW ours(groups, AdamWOptions{0.9, 0.95, 1e-8});
  std::vector<torch::optim::OptimizerParamGroup> ref_groups;
  ref_groups.emplace_back(std::vector<torch::Tensor>{a_ref},
                          std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(1e-2).betas({0.9, 0.95}).eps(1e-8).weight_decay(0.1)));
  ref_groups.emplace_back(std::vector<torch::Tensor>{b_ref},
                          std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(1e-2).betas({0.9, 0.95}).eps(1e-8).weight_decay(0.0)));
  torch::optim::AdamW ref(std::move(ref_groups), torch::optim::AdamWOptions(1e-2));
  for (int step = 0; step < 6; ++step) {
    auto x = torch::randn({3, 5});
    auto loss = ((x.matmul(a) + b).tanh().pow(2)).sum();
    auto loss_ref = ((x.matmul(a_ref) + b_ref).tanh().pow(2)).sum();
    loss.backward();
    loss_ref.backward();
    ours.step(1e-2);
    ref.step();
    ours.zero_grad();
    ref.zero_grad();
  }
  const double da = (a - a_ref).abs().max().item<double>(), db = (b - b_ref).abs().max().item<double>();
  std::printf("AdamW vs torch::optim::AdamW after 6 steps: maxdiff %.3g / %.3g\n", da, db);
  EXPECT_LE(da, 1e-7);
  EXPECT_LE(db, 1e-7);
}

TEST(AdamW, SkipsParametersWithoutGradient) {
  auto a = torch::ones({3}).requires_grad_(true);
  AdamW opt({{"decay", 0.5, {{"a", a}}}}, AdamWOptions{});
  opt.step(0.1);  // no gradient: no decay, no update (PyTorch semantics with set_to_none)
  EXPECT_TRUE(torch::equal(a, torch::ones({3})));
}

// bf16 parameters (the CUDA training dtype) are updated through an fp32 master copy: the master
// follows exactly the fp32 AdamW fed with the same (bf16) gradients, the bf16 weights are the
// master rounded to bf16, and updates far below bf16 resolution still accumulate in the master.
TEST(AdamW, Bfloat16ParametersKeepAnFp32Master) {
  torch::manual_seed(5);
  auto w32 = torch::randn({6, 3}).requires_grad_(true);
  auto w16 = w32.detach().to(torch::kBFloat16).requires_grad_(true);
  auto ref = w16.detach().to(torch::kFloat32).requires_grad_(true);  // what the master starts from
  AdamW mixed({{"decay", 0.1, {{"w", w16}}}}, AdamWOptions{0.9, 0.95, 1e-8});
  AdamW plain({{"decay", 0.1, {{"w", ref}}}}, AdamWOptions{0.9, 0.95, 1e-8});
  const auto start = w16.detach().clone();
  for (int step = 0; step < 5; ++step) {
    auto g = torch::randn({6, 3}).to(torch::kBFloat16);
    w16.mutable_grad() = g;
    ref.mutable_grad() = g.to(torch::kFloat32);
    mixed.step(1e-5);  // |update| ~ 1e-5, far below bf16's spacing near 1 (2^-7)
    plain.step(1e-5);
  }
  EXPECT_EQ(w16.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(w16.detach(), ref.detach().to(torch::kBFloat16)));
  // The master is saved with the state: it equals the fp32 run exactly.
  const std::string dir = test::make_temp_dir("adamw_bf16");
  mixed.save_state(dir + "/opt.safetensors");
  io::SafetensorsFile f(dir + "/opt.safetensors");
  auto v = f.get("master.w");
  ASSERT_EQ(v.nbytes, 6u * 3u * 4u);
  auto master = torch::empty({6, 3}, torch::kFloat32);
  std::memcpy(master.data_ptr(), v.data, v.nbytes);
  EXPECT_TRUE(torch::equal(master, ref.detach()));
  EXPECT_FALSE(torch::equal(master, start.to(torch::kFloat32)));  // the small updates were kept
}

TEST(Schedule, CosineWithWarmupMatchesTransformers) {
  // get_cosine_schedule_with_warmup(num_warmup_steps=5, num_training_steps=100)
  EXPECT_DOUBLE_EQ(lr_lambda(0, 5, 100), 0.0);
  EXPECT_DOUBLE_EQ(lr_lambda(2, 5, 100), 0.4);
  EXPECT_DOUBLE_EQ(lr_lambda(5, 5, 100), 1.0);
  EXPECT_NEAR(lr_lambda(52, 5, 100), 0.5 * (1 + std::cos(M_PI * 47.0 / 95.0)), 1e-15);
  EXPECT_NEAR(lr_lambda(100, 5, 100), 0.0, 1e-15);
  EXPECT_DOUBLE_EQ(lr_lambda(0, 0, 10), 1.0);
  EXPECT_DOUBLE_EQ(lr_lambda(7, 5, 100, /*constant=*/true), 1.0);
}

TEST(ParamGroups, DefaultAndReferenceCompat) {
  const std::string dir = test::make_tiny_model(test::make_temp_dir("groups") + "/m");
  auto m = model::load_model(dir);
  SafetyHead head(m->config().hidden_size);
  auto names = [](const ParamGroup& g) {
    std::vector<std::string> n;
    for (auto& p : g.params) n.push_back(p.first);
    return n;
  };
  auto find = [&](const std::vector<ParamGroup>& gs, const std::string& name) -> std::string {
    for (auto& g : gs)
      for (auto& n : names(g))
        if (n == name) return g.name;
    return "";
  };
  auto def = make_param_groups(m, &head, 1e-4, false);
  EXPECT_EQ(find(def, "model.layers.0.input_layernorm.weight"), "no_decay");
  EXPECT_EQ(find(def, "model.layers.0.self_attn.q_proj.bias"), "no_decay");
  EXPECT_EQ(find(def, "model.layers.0.self_attn.q_proj.weight"), "decay");
  EXPECT_EQ(find(def, "safety_head.C_head.bias"), "head_no_decay");
  EXPECT_EQ(find(def, "safety_head.C_head.weight"), "head_decay");
  auto compat = make_param_groups(m, &head, 1e-4, true);
  EXPECT_EQ(find(compat, "model.layers.0.input_layernorm.weight"), "decay");  // RMSNorm decayed
  EXPECT_EQ(find(compat, "model.norm.weight"), "decay");
  EXPECT_EQ(find(compat, "model.layers.0.self_attn.q_proj.bias"), "no_decay");
  EXPECT_EQ(find(compat, "safety_head.C_head.bias"), "");  // never optimised
  EXPECT_EQ(find(compat, "safety_head.ctx_head.weight"), "head_decay");
}

TEST(ClipGradNorm, ScalesToMaxNorm) {
  auto a = torch::zeros({2}).requires_grad_(true), b = torch::zeros({1}).requires_grad_(true);
  a.mutable_grad() = torch::tensor({3.0f, 0.0f});
  b.mutable_grad() = torch::tensor({4.0f});
  EXPECT_NEAR(clip_grad_norm({a, b}, 0), 5.0, 1e-6);
  EXPECT_NEAR(clip_grad_norm({a, b}, 1.0), 5.0, 1e-6);
  EXPECT_NEAR(clip_grad_norm({a, b}, 0), 1.0, 1e-5);
}

TEST(AdamW, StateRoundTripIsExact) {
  auto a = torch::randn({4, 3}).requires_grad_(true);
  AdamW opt({{"decay", 0.1, {{"a", a}}}}, AdamWOptions{});
  for (int i = 0; i < 3; ++i) {
    (a * a).sum().backward();
    opt.step(1e-2);
    opt.zero_grad();
  }
  const std::string path = test::make_temp_dir("optstate") + "/optimizer.safetensors";
  opt.save_state(path);
  auto b = a.detach().clone().requires_grad_(true);
  AdamW opt2({{"decay", 0.1, {{"a", b}}}}, AdamWOptions{});
  opt2.load_state(path);
  (a * a).sum().backward();
  (b * b).sum().backward();
  opt.step(1e-2);
  opt2.step(1e-2);
  EXPECT_TRUE(torch::equal(a, b));
}

}  // namespace
