// LoRA training end to end on a tiny random Qwen2 model and synthetic SafeKey data: the adapters
// (and the safety head) train with SFT + QMM + head, the checkpoint holds a PEFT adapter instead of
// the model, a resume is exact, data parallelism gives the one-process run, and the saved adapter
// applied on the fly (`forward --adapter`) equals the merged model (`safekey merge`).
#include <gtest/gtest.h>

#include <cstring>

#include "safekey/io/safetensors.h"
#include "safekey/lora/peft.h"
#include "safekey/model/adapter.h"
#include "safekey/train/batch.h"
#include "safekey/train/checkpoint.h"
#include "safekey/train/dataset.h"
#include "safekey/train/optim.h"
#include "safekey/train/step.h"
#include "safekey/train/trainer.h"
#include "support/support.h"
#include "train/tiny.h"

using namespace safekey;

namespace {

std::vector<std::string> lora_args(const std::string& model, const std::string& data, const std::string& out) {
  return {"train", "--model", model, "--data", data, "--output-dir", out, "--num-train-epochs", "3",
          "--per-device-train-batch-size", "2", "--gradient-accumulation-steps", "2", "--learning-rate", "1e-2",
          "--warmup-ratio", "0", "--key-sentence-prediction", "--safety-head", "--last-k-epoch", "2",
          "--lora-r", "4", "--lora-alpha", "8", "--lora-target-modules", "all-linear", "--threads", "1",
          "--dist-timeout", "30"};
}

std::vector<std::string> plus(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::vector<float> floats(const io::TensorView& v) {
  std::vector<float> out(v.nbytes / 4);
  std::memcpy(out.data(), v.data, v.nbytes);
  return out;
}

double max_abs_diff(const std::string& file_a, const std::string& file_b, const std::string& tensor) {
  io::SafetensorsFile a(file_a), b(file_b);
  auto x = floats(a.get(tensor)), y = floats(b.get(tensor));
  EXPECT_EQ(x.size(), y.size());
  double d = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) d = std::max(d, static_cast<double>(std::abs(x[i] - y[i])));
  return d;
}

struct Fixture {
  std::string dir, model, data;
};

Fixture fixture(const std::string& tag) {
  Fixture f;
  f.dir = test::make_temp_dir(tag);
  f.model = test::make_tiny_model(f.dir + "/model");
  f.data = test::make_tiny_data(f.dir + "/data.jsonl", 24);
  return f;
}

}  // namespace

// Catches: base weights given to the optimizer (its state would hold them), an adapter that does not
// train (the loss would not fall), a checkpoint that writes the whole model, and adapter files that
// PEFT could not read (the PEFT loader here parses them back with its checks).
TEST(LoraTraining, AdaptersTrainAndTheCheckpointIsAPeftAdapter) {
  auto f = fixture("lora_train");
  auto r = test::run_safekey(lora_args(f.model, f.data, f.dir + "/run"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("LoRA r=4"), std::string::npos) << r.err;
  const auto m = train::read_metrics(f.dir + "/run/metrics.jsonl");
  ASSERT_GE(m.size(), 6u);
  EXPECT_LT(m.back().sft_loss, m.front().sft_loss * 0.9) << "the adapters did not learn";
  EXPECT_GT(m.back().k_loss, 0.0) << "QMM was not on in the last epochs";
  const auto ck = train::list_checkpoints(f.dir + "/run").back();
  EXPECT_FALSE(path_exists(ck + "/model")) << "a LoRA checkpoint writes the adapter, not the model";
  EXPECT_TRUE(path_exists(ck + "/safety_head.safetensors"));
  const auto adapter = lora::load_adapter(ck + "/adapter");
  EXPECT_EQ(adapter.config.r, 4);
  EXPECT_EQ(adapter.modules.size(), 2u * 7u);  // q k v o gate up down in 2 layers (all-linear, no lm_head)
  const json cfg = read_json_file(ck + "/adapter/adapter_config.json");
  EXPECT_EQ(cfg["peft_type"], "LORA");
  EXPECT_EQ(cfg["base_model_name_or_path"], f.model);
  double b_norm = 0;
  for (auto& [path, ma] : adapter.modules) b_norm += ma.B.abs().sum().item<double>();
  EXPECT_GT(b_norm, 0.0) << "B never moved from zero";
  // Optimizer state: two fp32 moments per trainable parameter (adapters + head), none for the base.
  int64_t trainable = 2 * (32 + 1);  // the safety head's two Linear(32, 1)
  for (auto& [path, ma] : adapter.modules) trainable += ma.A.numel() + ma.B.numel();
  const json dist = read_json_file(f.dir + "/run/distributed.json");
  EXPECT_EQ(dist["optimizer_state_bytes_per_rank"][0].get<double>(), static_cast<double>(trainable * 8));
}

// Catches: a resume that re-initialises the adapters or restores them from the base, and RNG state
// not restored (LoRA dropout is on, so every step draws).
TEST(LoraTraining, ResumeIsExact) {
  auto f = fixture("lora_resume");
  const auto base = plus(lora_args(f.model, f.data, f.dir + "/full"), {"--lora-dropout", "0.1", "--gradient-checkpointing"});
  ASSERT_EQ(test::run_safekey(base).exit_code, 0);
  auto part = plus(lora_args(f.model, f.data, f.dir + "/part"),
                   {"--lora-dropout", "0.1", "--gradient-checkpointing", "--max-steps", "4", "--save-steps", "4"});
  ASSERT_EQ(test::run_safekey(part).exit_code, 0);
  auto resumed = plus(lora_args(f.model, f.data, f.dir + "/part"), {"--lora-dropout", "0.1", "--gradient-checkpointing", "--resume"});
  auto r = test::run_safekey(resumed);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto a = train::read_metrics(f.dir + "/full/metrics.jsonl"), b = train::read_metrics(f.dir + "/part/metrics.jsonl");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].loss, b[i].loss) << "step " << i + 1;
  const auto ca = train::list_checkpoints(f.dir + "/full").back(), cb = train::list_checkpoints(f.dir + "/part").back();
  EXPECT_EQ(read_file(ca + "/adapter/adapter_model.safetensors"), read_file(cb + "/adapter/adapter_model.safetensors"));
}

// Catches: LoRA gradients not reduced across ranks, or reduced with the wrong scale (the adapters
// would differ from one process accumulating the same micro-batches).
TEST(LoraTraining, TwoRanksEqualOneRankWithDoubledAccumulation) {
  auto f = fixture("lora_dp");
  auto one = test::run_safekey(plus(lora_args(f.model, f.data, f.dir + "/w1"), {"--gradient-accumulation-steps", "4"}));
  ASSERT_EQ(one.exit_code, 0) << one.err;
  auto two = test::run_safekey(plus({"launch", "--nproc-per-node", "2", "--master-port", "0", "--term-timeout", "5", "--",
                                     "safekey"},
                                    plus(lora_args(f.model, f.data, f.dir + "/w2"), {"--zero-stage", "1"})));
  ASSERT_EQ(two.exit_code, 0) << two.err;
  const auto a = train::read_metrics(f.dir + "/w1/metrics.jsonl"), b = train::read_metrics(f.dir + "/w2/metrics.jsonl");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i].loss, b[i].loss, 1e-5 * std::max(1.0, std::abs(a[i].loss)));
  const std::string fa = train::list_checkpoints(f.dir + "/w1").back() + "/adapter/adapter_model.safetensors";
  const std::string fb = train::list_checkpoints(f.dir + "/w2").back() + "/adapter/adapter_model.safetensors";
  io::SafetensorsFile file(fa);
  for (const auto& name : file.names()) EXPECT_LE(max_abs_diff(fa, fb, name), 1e-5) << name;
}

// Catches: `forward --adapter` and `safekey merge` disagreeing (a wrong scale, A/B transposed, a
// module applied twice or skipped) on the adapter this trainer wrote.
TEST(LoraTraining, ForwardWithTheAdapterEqualsTheMergedModel) {
  auto f = fixture("lora_fwd");
  ASSERT_EQ(test::run_safekey(plus(lora_args(f.model, f.data, f.dir + "/run"), {"--max-steps", "3"})).exit_code, 0);
  const std::string adapter = train::list_checkpoints(f.dir + "/run").back() + "/adapter";
  auto merged = test::run_safekey({"merge", "--model", f.model, "--adapter", adapter, "--out", f.dir + "/merged"});
  ASSERT_EQ(merged.exit_code, 0) << merged.err;
  const std::string ids = "94,12,30,41,3,13,31,60,61,80";
  auto a = test::run_safekey({"forward", "--model", f.model, "--adapter", adapter, "--ids", ids, "--out", f.dir + "/a.safetensors"});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  auto b = test::run_safekey({"forward", "--model", f.dir + "/merged", "--ids", ids, "--out", f.dir + "/b.safetensors"});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  auto c = test::run_safekey({"forward", "--model", f.model, "--ids", ids, "--out", f.dir + "/c.safetensors"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  io::SafetensorsFile fa(f.dir + "/a.safetensors"), fb(f.dir + "/b.safetensors");
  auto la = floats(fa.get("logits")), lb = floats(fb.get("logits"));
  double worst = 0, scale = 0;
  for (size_t i = 0; i < la.size(); ++i) {
    worst = std::max(worst, static_cast<double>(std::abs(la[i] - lb[i])));
    scale = std::max(scale, static_cast<double>(std::abs(lb[i])));
  }
  EXPECT_LE(worst / scale, 1e-5);
  EXPECT_GT(max_abs_diff(f.dir + "/a.safetensors", f.dir + "/c.safetensors", "logits"), 1e-4)
      << "the adapter changed nothing";
}

// Catches: weight decay or an update reaching the frozen base (AdamW decays every parameter it
// holds, so a base weight in the optimizer would move even without a gradient), and gradients
// accumulating into base weights.
TEST(LoraTraining, BaseWeightsAreBitIdenticalAfterTraining) {
  auto f = fixture("lora_frozen");
  auto m = model::load_model(f.model);
  model::add_lora(m, [](const std::string& p) { return p != "lm_head"; }, {4, 2.0, 0.1}, 3);
  m->train();
  auto ds = train::load_pretokenized(f.data, m->config().vocab_size);
  train::AdamW opt(train::make_param_groups(m, nullptr, 0.1, false), {});
  train::StepOptions so;
  so.qmm = true;
  for (int step = 0; step < 4; ++step) {
    std::vector<const data::TokenizedExample*> rows = {&ds.examples[static_cast<size_t>(2 * step)],
                                                       &ds.examples[static_cast<size_t>(2 * step + 1)]};
    train::safekey_step(m, nullptr, train::collate(rows, m->config().eos_token_ids[0]), so);
    opt.accumulate_gradients();
    opt.reduce_gradients();
    opt.step(1e-2);
    opt.zero_grad();
  }
  auto fresh = model::load_model(f.model);
  auto a = m->hf_named_parameters(), b = fresh->hf_named_parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first << " changed";
    EXPECT_FALSE(a[i].second.grad().defined()) << a[i].first << " has a gradient";
  }
  double moved = 0;
  for (auto& [name, p] : model::lora_parameters(m))
    if (name.find(".lora_B.") != std::string::npos) moved += p.abs().sum().item<double>();
  EXPECT_GT(moved, 0.0) << "the adapters did not train";
}
