// ModelConfig from HF config.json: the golden configs, defaults, and clear errors for unsupported or
// ill-typed fields.
#include <gtest/gtest.h>

#include "safekey/model/config.h"
#include "safekey/util/error.h"
#include "safekey/util/file.h"
#include "support/support.h"

using namespace safekey;
using namespace safekey::model;

namespace {

json base() {
  return {{"architectures", {"Qwen2ForCausalLM"}}, {"model_type", "qwen2"}, {"vocab_size", 100},
          {"hidden_size", 64}, {"intermediate_size", 128}, {"num_hidden_layers", 2},
          {"num_attention_heads", 4}, {"num_key_value_heads", 2}};
}

void expect_error(const json& j, const std::string& fragment) {
  try {
    ModelConfig::from_json(j, "cfg.json");
    ADD_FAILURE() << "accepted: " << j.dump();
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(fragment), std::string::npos) << msg;
    EXPECT_NE(msg.find("cfg.json"), std::string::npos) << msg;
  }
}

TEST(ModelConfig, GoldenConfigs) {
  std::string g = test::golden_dir();
  SAFEKEY_REQUIRE_DIR(g);
  ModelConfig q2 = ModelConfig::from_file(g + "/qwen2/config.json");
  EXPECT_EQ(q2.arch, Arch::Qwen2);
  EXPECT_TRUE(q2.attention_bias);
  EXPECT_EQ(q2.head_dim, 16);
  EXPECT_EQ(q2.bos_token_ids, std::vector<int64_t>{382});
  EXPECT_EQ(q2.rope_theta, 1e6);
  ModelConfig ll = ModelConfig::from_file(g + "/llama/config.json");
  EXPECT_EQ(ll.arch, Arch::Llama);
  EXPECT_EQ(ll.rope_scaling.type, "llama3");
  EXPECT_EQ(ll.rope_scaling.factor, 8.0);
  EXPECT_EQ(ll.rope_scaling.original_max_position_embeddings, 64);
  EXPECT_FALSE(ll.attention_bias);
  ModelConfig q3 = ModelConfig::from_file(g + "/qwen3/config.json");
  EXPECT_TRUE(q3.qk_norm);
  EXPECT_TRUE(q3.tie_word_embeddings);
  EXPECT_EQ(q3.parameter_shapes().back().name, "model.norm.weight");  // no lm_head when tied
  // to_json keeps the file's keys and values.
  EXPECT_EQ(q3.to_json(), read_json_file(g + "/qwen3/config.json"));
}

TEST(ModelConfig, DefaultsAndVariants) {
  json j = base();
  j.erase("num_key_value_heads");
  ModelConfig c = ModelConfig::from_json(j, "cfg.json");
  EXPECT_EQ(c.num_key_value_heads, 4);
  EXPECT_EQ(c.head_dim, 16);
  json l = base();
  l["architectures"] = {"LlamaForCausalLM"};
  l.erase("model_type");
  l["eos_token_id"] = {1, 2};
  l["head_dim"] = 32;
  l["rope_scaling"] = {{"type", "default"}};
  ModelConfig lc = ModelConfig::from_json(l, "cfg.json");
  EXPECT_EQ(lc.eos_token_ids, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(lc.head_dim, 32);
  EXPECT_EQ(lc.parameter_shapes()[1].shape, (std::vector<int64_t>{128, 64}));  // q_proj
  // model_type alone is enough.
  json m = base();
  m.erase("architectures");
  m["model_type"] = "qwen3";
  EXPECT_EQ(ModelConfig::from_json(m, "cfg.json").arch, Arch::Qwen3);
}

TEST(ModelConfig, Errors) {
  json j = base();
  j["architectures"] = {"MistralForCausalLM"};
  expect_error(j, "unsupported architecture 'MistralForCausalLM'");
  j = base();
  j["use_sliding_window"] = true;
  expect_error(j, "use_sliding_window");
  j = base();
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  expect_error(j, "unsupported rope type 'yarn'");
  j = base();
  j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}};
  expect_error(j, "low_freq_factor");
  j = base();
  j["hidden_size"] = "64";
  expect_error(j, "'hidden_size' must be an integer");
  j = base();
  j["hidden_size"] = 64.5;
  expect_error(j, "'hidden_size'");
  j = base();
  j.erase("vocab_size");
  expect_error(j, "missing field 'vocab_size'");
  j = base();
  j["num_key_value_heads"] = 3;
  expect_error(j, "not a multiple");
  j = base();
  j["tie_word_embeddings"] = 1;
  expect_error(j, "'tie_word_embeddings' must be true or false");
  j = base();
  j["rms_norm_eps"] = "1e-6";
  expect_error(j, "'rms_norm_eps' must be a number");
  j = base();
  j["hidden_act"] = "gelu";
  expect_error(j, "hidden_act");
  j = base();
  j["torch_dtype"] = "int8";
  expect_error(j, "int8");
  j = base();
  j["model_type"] = "llama";
  expect_error(j, "model_type");
  EXPECT_THROW(ModelConfig::from_file("/nonexistent/config.json"), Error);
}

}  // namespace
