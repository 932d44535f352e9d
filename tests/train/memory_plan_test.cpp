// The memory plan (`safekey train --plan`): its parameter count is the model's, every ZeRO stage
// divides what it shards by W and nothing else, gradient checkpointing and chunked logits shrink
// what they should, the paper's 7B setups get the verdicts the arithmetic gives, and the command
// works from a folder with only config.json. Catches: a stage that shards the wrong term, a plan
// that ignores the world size, the dtype or the head, and a verdict line that is missing.
#include <gtest/gtest.h>

#include "safekey/model/config.h"
#include "safekey/train/memory_plan.h"
#include "safekey/util/file.h"
#include "support/support.h"

using namespace safekey;
using namespace safekey::train;

namespace {

std::string qwen7b_dir() { return test::shared_dir() + "/data/hf-configs/reconstructed/DeepSeek-R1-Distill-Qwen-7B"; }

double line(const MemoryPlan& p, const std::string& prefix) {
  for (const auto& l : p.lines)
    if (l.what.rfind(prefix, 0) == 0) return l.bytes;
  ADD_FAILURE() << "no line " << prefix;
  return -1;
}

PlanInput qwen7b(int W, int z) {
  PlanInput in;
  in.model = model::ModelConfig::from_file(qwen7b_dir() + "/config.json");
  in.world_size = W;
  in.zero_stage = z;
  in.dtype = "bfloat16";
  in.seq_len = 8192;
  in.gradient_checkpointing = true;
  return in;
}

}  // namespace

TEST(MemoryPlan, StagesShardWhatTheyShouldOfThe7BModel) {
  SAFEKEY_REQUIRE_DIR(qwen7b_dir());
  const auto base = plan_memory(qwen7b(8, 0));
  const double N = static_cast<double>(base.parameters);
  EXPECT_EQ(base.parameters, qwen7b(8, 0).model.num_parameters() + 2 * (3584 + 1));  // + the safety head
  EXPECT_NEAR(N, 7.616e9, 0.01e9);
  EXPECT_DOUBLE_EQ(line(base, "parameters"), 2 * N);
  EXPECT_DOUBLE_EQ(line(base, "gradients"), 2 * N);
  EXPECT_DOUBLE_EQ(line(base, "optimizer state"), 12 * N);  // fp32 exp_avg, exp_avg_sq, master
  const auto z1 = plan_memory(qwen7b(8, 1));
  EXPECT_DOUBLE_EQ(line(z1, "optimizer state"), 12 * N / 8);
  EXPECT_DOUBLE_EQ(line(z1, "gradients"), 2 * N);
  const auto z2 = plan_memory(qwen7b(8, 2));
  EXPECT_DOUBLE_EQ(line(z2, "gradients"), 2 * N + 4 * N / 8);
  // ZeRO-3: slices of the decoder layers plus one gathered layer; the embedding, the final norm, the
  // LM head and the safety head whole on every rank.
  double layer0 = 0, layers = 0;
  for (const auto& s : qwen7b(8, 3).model.parameter_shapes()) {
    double k = 1;
    for (int64_t d : s.shape) k *= static_cast<double>(d);
    if (s.name.rfind("model.layers.", 0) == 0) layers += k;
    if (s.name.rfind("model.layers.0.", 0) == 0) layer0 += k;
  }
  const double outer = N - layers;
  EXPECT_NEAR(outer, 2 * 152064.0 * 3584 + 3584 + 2 * 3585, 1.0);
  const auto z3 = plan_memory(qwen7b(8, 3));
  // Two whole layers with prefetch (the one in use and the next), one without.
  EXPECT_DOUBLE_EQ(line(z3, "parameters"), 2 * layers / 8 + 2 * 2 * layer0 + 2 * outer);
  auto no_prefetch = qwen7b(8, 3);
  no_prefetch.zero3_prefetch = false;
  EXPECT_DOUBLE_EQ(line(plan_memory(no_prefetch), "parameters"), 2 * layers / 8 + 2 * layer0 + 2 * outer);
  EXPECT_DOUBLE_EQ(line(z3, "gradients"), 4 * N / 8 + 2 * layer0 + 2 * outer);
  EXPECT_DOUBLE_EQ(line(z3, "optimizer state"), 12 * N / 8);
  // Activations and logits do not depend on the stage or the world size.
  EXPECT_DOUBLE_EQ(line(base, "activations"), line(z3, "activations"));
  EXPECT_DOUBLE_EQ(line(base, "logits"), line(plan_memory(qwen7b(16, 0)), "logits"));
  // The verdicts the arithmetic gives: 16 bytes/parameter (122 GB) never fits one 80 GB card.
  EXPECT_FALSE(plan_memory(qwen7b(1, 0)).fits);
  EXPECT_FALSE(plan_memory(qwen7b(8, 0)).fits);
  EXPECT_TRUE(plan_memory(qwen7b(8, 3)).fits);
}

TEST(MemoryPlan, CheckpointingChunkingAndDtypeChangeTheirTerms) {
  SAFEKEY_REQUIRE_DIR(qwen7b_dir());
  auto in = qwen7b(1, 0);
  const auto ck = plan_memory(in);
  in.gradient_checkpointing = false;
  const auto no = plan_memory(in);
  EXPECT_GT(line(no, "activations"), 10 * line(ck, "activations"));
  EXPECT_DOUBLE_EQ(no.activations_with_ckpt, ck.activations_with_ckpt);
  in.loss_chunk_tokens = 0;  // one pass: 8192 targets x 152064 vocab
  EXPECT_DOUBLE_EQ(line(plan_memory(in), "logits"), 8192.0 * 152064 * 14);
  in.loss_chunk_tokens = 1024;
  EXPECT_DOUBLE_EQ(line(plan_memory(in), "logits"), 1024.0 * 152064 * 14);
  in.dtype = "float32";
  const auto f32 = plan_memory(in);
  EXPECT_DOUBLE_EQ(line(f32, "optimizer state"), 8.0 * static_cast<double>(f32.parameters));
  EXPECT_DOUBLE_EQ(line(f32, "parameters"), 4.0 * static_cast<double>(f32.parameters));
}

TEST(MemoryPlan, CommandFromAFolderWithOnlyConfigJson) {
  SAFEKEY_REQUIRE_DIR(qwen7b_dir());
  const std::string dir = test::make_temp_dir("plan");
  write_file_atomic(dir + "/config.json", read_file(qwen7b_dir() + "/config.json"));
  auto r = test::run_safekey({"train", "--plan", "--model", dir, "--world-size", "8", "--zero-stage", "3", "--device",
                              "cuda", "--max-seq-len", "8192", "--per-device-train-batch-size", "1",
                              "--gradient-checkpointing", "--key-sentence-prediction", "--safety-head"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("| optimizer state |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\nverdict: fits in 80 GiB per rank"), std::string::npos) << r.out;
  auto one = test::run_safekey({"train", "--plan", "--model", dir, "--device", "cuda"});
  ASSERT_EQ(one.exit_code, 0) << one.err;
  EXPECT_NE(one.out.find("\nverdict: does not fit in 80 GiB per rank"), std::string::npos) << one.out;
}
