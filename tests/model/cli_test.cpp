// The model commands as a user runs them (real `safekey` processes): init -> inspect -> forward,
// forward against the golden logits, and one clear error line for each kind of bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "safekey/model/decoder.h"
#include "safekey/model/tensor_io.h"
#include "safekey/util/file.h"
#include "safekey/util/json.h"
#include "support/support.h"

using namespace safekey;

namespace {

const char* kTinyConfig = R"({
  "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 50,
  "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2,
  "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-6,
  "rope_theta": 10000.0, "tie_word_embeddings": true, "initializer_range": 0.02,
  "bos_token_id": 48, "eos_token_id": 49, "torch_dtype": "float32"
})";

// Runs safekey; expects failure with one "error: " line containing every fragment.
void expect_fail(const std::vector<std::string>& args, const std::vector<std::string>& fragments) {
  auto r = test::run_safekey(args);
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  for (const auto& f : fragments) EXPECT_NE(r.err.find(f), std::string::npos) << "want '" << f << "' in: " << r.err;
}

std::map<std::string, torch::Tensor> by_name(
    const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  return {tensors.begin(), tensors.end()};
}

std::string make_model(const std::string& tag, const std::string& extra_flag = "") {
  std::string dir = test::make_temp_dir(tag);
  write_file_atomic(dir + "/config.json", kTinyConfig);
  write_file_atomic(dir + "/tokenizer.json", "{\"model\": {}}");
  std::vector<std::string> args = {"init", "--config", dir + "/config.json", "--seed", "3",
                                   "--out", dir + "/m", "--tokenizer", dir + "/tokenizer.json"};
  if (!extra_flag.empty()) {
    args.push_back("--dtype");
    args.push_back(extra_flag);
  }
  auto r = test::run_safekey(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return dir + "/m";
}

TEST(ModelCli, InitInspectForward) {
  std::string m = make_model("cli");
  EXPECT_TRUE(path_exists(m + "/model.safetensors"));
  EXPECT_TRUE(path_exists(m + "/tokenizer.json"));
  auto ins = test::run_safekey({"inspect", "--model", m});
  ASSERT_EQ(ins.exit_code, 0) << ins.err;
  EXPECT_NE(ins.out.find("Qwen2ForCausalLM"), std::string::npos) << ins.out;
  EXPECT_NE(ins.out.find("F32"), std::string::npos);
  EXPECT_NE(ins.out.find("model.layers.0.self_attn.q_proj.bias"), std::string::npos);
  // Same seed -> same weights; HF init statistics.
  auto w = model::load_safetensors(m + "/model.safetensors");
  for (auto& [name, t] : w) {
    if (name.find("norm") != std::string::npos) {
      EXPECT_TRUE(t.eq(1).all().item<bool>()) << name;
    }
    if (name.find("bias") != std::string::npos) {
      EXPECT_TRUE(t.eq(0).all().item<bool>()) << name;
    }
  }
  std::string m2 = make_model("cli");
  EXPECT_TRUE(read_file(m + "/model.safetensors") == read_file(m2 + "/model.safetensors"));

  std::string out = test::make_temp_dir("cli") + "/f.safetensors";
  auto f = test::run_safekey({"forward", "--model", m, "--ids", "1,2,3,4", "--key-mask", "0,1,1,1",
                              "--out", out});
  ASSERT_EQ(f.exit_code, 0) << f.err;
  auto t = by_name(model::load_safetensors(out));
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t["logits"].sizes(), (std::vector<int64_t>{4, 50}));
  EXPECT_EQ(t["logits"].scalar_type(), torch::kFloat);
  EXPECT_EQ(t["hidden_states"].sizes(), (std::vector<int64_t>{4, 32}));
  EXPECT_EQ(t["hidden_states"].scalar_type(), torch::kFloat);

  // bf16 checkpoint: written as BF16, forward still writes float32.
  std::string mb = make_model("cli", "bfloat16");
  auto ib = test::run_safekey({"inspect", "--model", mb});
  EXPECT_NE(ib.out.find("BF16"), std::string::npos) << ib.out;
  EXPECT_EQ(read_json_file(mb + "/config.json")["torch_dtype"], "bfloat16");
  ASSERT_EQ(test::run_safekey({"forward", "--model", mb, "--ids", "5,6", "--out", out}).exit_code, 0);
}

TEST(ModelCli, ForwardMatchesGoldenLogits) {
  std::string g = path_join(test::golden_dir(), "llama");
  SAFEKEY_REQUIRE_DIR(g);
  json cases = read_json_file(g + "/cases.json");
  const json& c = cases["cases"][1];  // len17
  std::string ids;
  for (const auto& v : c["input_ids"]) ids += (ids.empty() ? "" : ",") + std::to_string(v.get<int64_t>());
  std::string out = test::make_temp_dir("cli") + "/g.safetensors";
  auto r = test::run_safekey({"forward", "--model", g, "--ids", ids, "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  torch::Tensor logits = by_name(model::load_safetensors(out))["logits"];
  double worst = 0;
  for (int64_t i = 0; i < logits.size(0); ++i)
    for (int64_t v = 0; v < logits.size(1); ++v) {
      double want = c["logits"][i][v].get<double>();
      worst = std::max(worst, std::abs(logits[i][v].item<double>() - want) - 1e-5 * std::abs(want));
    }
  EXPECT_LT(worst, 1e-4);
}

TEST(ModelCli, BadInputGivesOneClearLine) {
  std::string m = make_model("bad");
  std::string dir = test::make_temp_dir("bad");
  std::string out = dir + "/o.safetensors";
  expect_fail({"forward", "--model", dir + "/nope", "--ids", "1", "--out", out}, {"nope"});
  expect_fail({"forward", "--model", m, "--ids", "1,50", "--out", out}, {"--ids", "50", "[0, 50)"});
  expect_fail({"forward", "--model", m, "--ids", "1,x", "--out", out}, {"--ids", "'x'"});
  expect_fail({"forward", "--model", m, "--ids", "1,2", "--key-mask", "1", "--out", out}, {"--key-mask"});
  expect_fail({"forward", "--model", m, "--out", out}, {"--ids"});
  expect_fail({"inspect", "--model", dir}, {"config.json"});
  expect_fail({"init", "--config", dir + "/missing.json", "--out", dir + "/x"}, {"missing.json"});

  // Truncated weights.
  std::string t = dir + "/trunc";
  make_dirs(t);
  write_file_atomic(t + "/config.json", read_file(m + "/config.json"));
  std::string w = read_file(m + "/model.safetensors");
  write_file_atomic(t + "/model.safetensors", w.substr(0, w.size() - 100));
  expect_fail({"forward", "--model", t, "--ids", "1", "--out", out}, {"model.safetensors", "truncated"});
  expect_fail({"inspect", "--model", t}, {"model.safetensors"});
  // Corrupt header.
  std::string bad = w;
  bad[8] = '#';  // the header's opening brace
  write_file_atomic(t + "/model.safetensors", bad);
  expect_fail({"forward", "--model", t, "--ids", "1", "--out", out}, {"model.safetensors", "JSON"});
  // Missing tensor and shape mismatch with the config.
  auto tensors = model::load_safetensors(m + "/model.safetensors");
  auto dropped = tensors;
  dropped.erase(std::remove_if(dropped.begin(), dropped.end(),
                               [](auto& kv) { return kv.first == "model.layers.1.mlp.up_proj.weight"; }),
                dropped.end());
  model::save_safetensors(t + "/model.safetensors", dropped);
  expect_fail({"forward", "--model", t, "--ids", "1", "--out", out}, {"model.layers.1.mlp.up_proj.weight", "missing"});
  json cfg = read_json_file(m + "/config.json");
  cfg["intermediate_size"] = 40;
  write_file_atomic(t + "/config.json", cfg.dump());
  model::save_safetensors(t + "/model.safetensors", tensors);
  expect_fail({"forward", "--model", t, "--ids", "1", "--out", out}, {"mlp", "shape", "[48,32]", "[40,32]"});
  // Missing / ill-typed config fields.
  cfg = read_json_file(m + "/config.json");
  cfg.erase("hidden_size");
  write_file_atomic(t + "/config.json", cfg.dump());
  expect_fail({"forward", "--model", t, "--ids", "1", "--out", out}, {"config.json", "hidden_size"});
  cfg = read_json_file(m + "/config.json");
  cfg["num_attention_heads"] = "four";
  write_file_atomic(t + "/config.json", cfg.dump());
  expect_fail({"inspect", "--model", t}, {"config.json", "num_attention_heads"});
}

}  // namespace
