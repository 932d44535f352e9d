// Loading never holds a second model (nor a host copy of a tensor) and saving never holds the whole model: bytes allocated by
// libtorch are counted exactly with tensor::CpuMemoryMeter (c10's memory-reporting hook). Catches: load_weights or a resume that
// builds a whole model and copies it over (the old resume path: +1 model), and a meter that does
// not see allocations or frees.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "safekey/dist/sharded_adamw.h"
#include "safekey/model/decoder.h"
#include "safekey/tensor/memory_meter.h"
#include "safekey/train/checkpoint.h"
#include "safekey/train/optim.h"
#include "safekey/train/trainer.h"
#include "support/support.h"
#include "train/tiny.h"

using namespace safekey;

namespace {

// A model big enough that one model (6.6 MB) stands far above one tensor (2 MB) and noise.
std::string make_model(const std::string& dir) {
  make_dirs(dir);
  auto j = test::tiny_config_json(4096, 128, 4);
  model::DecoderModel m(model::ModelConfig::from_json(j, dir));
  model::init_weights(m, 1);
  model::save_model(m, dir);
  return dir;
}

int64_t model_bytes(model::DecoderModel& m) {
  int64_t b = 0;
  for (auto& [n, p] : m->hf_named_parameters()) b += p.numel() * static_cast<int64_t>(p.element_size());
  return b;
}

constexpr int64_t kLargestTensor = 4096 * 128 * 4;  // embed_tokens / lm_head in float32
constexpr int64_t kSlack = 256 * 1024;               // small tensors of the bookkeeping

}  // namespace

TEST(CpuMemoryMeter, CountsAllocationsAndFrees) {
  tensor::CpuMemoryMeter meter;
  {
    auto t = torch::empty({1 << 18}, torch::kFloat32);  // 1 MiB
    EXPECT_EQ(meter.current(), 1 << 20);
  }
  EXPECT_EQ(meter.current(), 0);
  EXPECT_EQ(meter.peak(), 1 << 20);
}

TEST(LoadMemory, LoadWeightsAddsOneTensorAtMost) {
  const std::string dir = make_model(test::make_temp_dir("load_mem") + "/model");
  auto m = model::load_model(dir);
  const int64_t whole = model_bytes(m);
  ASSERT_GT(whole, 3 * kLargestTensor);
  tensor::CpuMemoryMeter meter;
  model::load_weights(m, dir);
  std::printf("load_weights: peak %lld bytes for a %lld-byte model\n", static_cast<long long>(meter.peak()),
              static_cast<long long>(whole));
  // The tensors are copied from the memory-mapped file straight into the parameters (no host
  // copy per tensor): nothing beyond bookkeeping. Catches a per-tensor copy (+ the largest tensor)
  // and a second model (+ the model).
  EXPECT_LE(meter.peak(), kSlack);
}

TEST(LoadMemory, ResumeLoadsIntoTheRunsModel) {
  const std::string dir = test::make_temp_dir("resume_mem");
  train::TrainConfig c;
  c.model_dir = make_model(dir + "/model");
  c.data_path = test::make_tiny_data(dir + "/data.jsonl", 8, 11, 4096);
  c.output_dir = dir + "/run";
  c.epochs = 1;
  c.batch_size = 2;
  c.grad_accum = 1;
  c.max_steps = 1;
  c.quiet = true;
  auto r = train::run_training(c);
  auto m = model::load_model(c.model_dir);
  const int64_t whole = model_bytes(m);
  train::AdamW opt(train::make_param_groups(m, nullptr, 0.0, false), {});
  tensor::CpuMemoryMeter meter;
  train::load_checkpoint_weights(r.last_checkpoint, m, nullptr, opt);
  // The optimizer's two fp32 moments are the state being restored (2 models' worth); a second
  // model for the weights would add a third.
  std::printf("resume: peak %lld bytes; model %lld bytes\n", static_cast<long long>(meter.peak()),
              static_cast<long long>(whole));
  EXPECT_LE(meter.peak(), 2 * whole + kLargestTensor + kSlack);
  EXPECT_GE(meter.peak(), 2 * whole);
}

// A save converts and holds one shard at a time: saving the 6.6 MB float32 model as bfloat16 in
// 256 KB shards peaks at about one shard (the largest tensor, 1 MB in bf16, is a shard of its own),
// not the 3.3 MB of the whole converted model. The sharded folder loads back to the bf16-rounded
// weights, and a later save with another shard count removes the stale shards. Catches: a save
// that converts every tensor before writing, a shard index that names the wrong file, and stale
// shards from an earlier save being left for loaders to trip on.
TEST(SaveMemory, StreamedShardsBoundHostMemoryAndStaleShardsGo) {
  const std::string dir = test::make_temp_dir("save_mem");
  auto m = model::load_model(make_model(dir + "/model"));
  const int64_t whole_bf16 = model_bytes(m) / 2;
  const std::string out = dir + "/saved";
  {
    tensor::CpuMemoryMeter meter;
    model::save_model(m, out, 256 * 1024, "bfloat16");
    std::printf("save: peak %lld bytes; the model in bf16: %lld bytes\n", static_cast<long long>(meter.peak()),
                static_cast<long long>(whole_bf16));
    EXPECT_LE(meter.peak(), kLargestTensor / 2 + 256 * 1024 + kSlack);
    EXPECT_LT(meter.peak(), whole_bf16 / 2);
  }
  const json index = read_json_file(out + "/model.safetensors.index.json");
  const size_t shards = [&] {
    std::set<std::string> files;
    for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) files.insert(it->get<std::string>());
    return files.size();
  }();
  EXPECT_GT(shards, 5u);
  auto back = model::load_model(out);
  auto a = m->hf_named_parameters(), b = back->hf_named_parameters();
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_TRUE(torch::equal(a[i].second.to(torch::kBFloat16).to(torch::kFloat32), b[i].second)) << a[i].first;
  // Saved again in 2 MB shards: fewer files, and none of the earlier ones remain.
  model::save_model(m, out, 2 * 1024 * 1024, "bfloat16");
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(out))
    if (e.path().extension() == ".safetensors") ++files;
  const json index2 = read_json_file(out + "/model.safetensors.index.json");
  std::set<std::string> named;
  for (auto it = index2["weight_map"].begin(); it != index2["weight_map"].end(); ++it) named.insert(it->get<std::string>());
  EXPECT_EQ(files, named.size()) << "stale shards of the first save are left";
  EXPECT_LT(files, shards);
  auto again = model::load_model(out);
  EXPECT_TRUE(torch::equal(again->hf_named_parameters()[0].second, b[0].second));
}
