// Low-memory loading at ZeRO-3, with real processes: each rank builds the model with the decoder
// layers as placeholders and reads only its slices of them from the files, so the bytes libtorch
// allocates while loading stay at (everything outside the layers) + (the layers / W). Counted with
// tensor::CpuMemoryMeter through the trainer's SAFEKEY_MEMORY_METER record. Catches: a rank that
// builds the whole model (in fp32 or the training dtype) before sharding it, or reads whole layers
// to keep a slice, or a load path that bypasses the placeholders (stage 2 is measured alongside as
// the contrast: it must hold the whole model).
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "safekey/model/decoder.h"
#include "support/support.h"
#include "train/tiny.h"

using namespace safekey;

namespace {

struct Sizes {
  int64_t layers = 0, rest = 0;  // bytes in float32
};

// Layers dominate: 6 layers of hidden 128 (~0.6 MB each) against 0.1 MB of embeddings and LM head.
std::string make_model(const std::string& dir, Sizes* sizes) {
  make_dirs(dir);
  model::DecoderModel m(model::ModelConfig::from_json(test::tiny_config_json(96, 128, 6), dir + "/config.json"));
  model::init_weights(m, 3);
  model::save_model(m, dir);
  for (auto& [name, p] : m->hf_named_parameters())
    (name.rfind("model.layers.", 0) == 0 ? sizes->layers : sizes->rest) += p.numel() * 4;
  return dir;
}

std::vector<double> load_peaks(const std::string& model, const std::string& data, const std::string& out,
                               const std::string& stage) {
  ::setenv("SAFEKEY_MEMORY_METER", "1", 1);
  auto r = test::run_process({test::safekey_exe(), "launch", "--nproc-per-node", "2", "--master-port", "0",
                              "--term-timeout", "5", "--", "safekey", "train", "--model", model, "--data", data,
                              "--output-dir", out, "--num-train-epochs", "1", "--per-device-train-batch-size", "2",
                              "--max-steps", "1", "--zero-stage", stage, "--dist-timeout", "30", "--threads", "1"});
  ::unsetenv("SAFEKEY_MEMORY_METER");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const json mem = read_json_file(out + "/memory.json");
  return mem.at("cpu_peak_after_load_bytes_per_rank").get<std::vector<double>>();
}

}  // namespace

TEST(Zero3Load, EachRankAllocatesOnlyItsShareOfTheLayers) {
  const std::string dir = test::make_temp_dir("zero3_load");
  Sizes s;
  const std::string model = make_model(dir + "/model", &s);
  const std::string data = test::make_tiny_data(dir + "/data.jsonl", 8);
  ASSERT_GT(s.layers, 20 * s.rest);
  // The safety head, the optimizer's bookkeeping and the rotary tables: well under this.
  constexpr double kSlack = 256 * 1024;
  const auto z3 = load_peaks(model, data, dir + "/z3", "3");
  ASSERT_EQ(z3.size(), 2u);
  for (int r = 0; r < 2; ++r) {
    std::printf("rank %d: ZeRO-3 load peak %.0f bytes; layers %lld, the rest %lld\n", r, z3[static_cast<size_t>(r)],
                static_cast<long long>(s.layers), static_cast<long long>(s.rest));
    EXPECT_LE(z3[static_cast<size_t>(r)], static_cast<double>(s.rest) + static_cast<double>(s.layers) / 2 + kSlack)
        << "rank " << r << " allocated more than its share while loading";
    EXPECT_GE(z3[static_cast<size_t>(r)], static_cast<double>(s.layers) / 2) << "the meter missed the slices";
  }
  const auto z2 = load_peaks(model, data, dir + "/z2", "2");
  for (int r = 0; r < 2; ++r)
    EXPECT_GE(z2[static_cast<size_t>(r)], static_cast<double>(s.layers + s.rest)) << "stage 2 holds the whole model";
}
