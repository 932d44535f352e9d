// The PEFT adapter format (src/safekey/lora/peft.h) on real files in temp folders: config fields,
// save/load round trip, adapters in PEFT's own layout (tests/lora/fixtures.h), module targeting,
// and one clear error per option or tensor this implementation refuses.
#include "safekey/lora/peft.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "lora/fixtures.h"
#include "support/support.h"

using namespace safekey;
using lora::LoraConfig;

namespace {

// Runs `f`, expects a safekey::Error whose message holds every fragment.
template <typename F>
void expect_error(F&& f, const std::vector<std::string>& fragments) {
  try {
    f();
    ADD_FAILURE() << "no error; wanted one with '" << fragments.front() << "'";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const auto& frag : fragments)
      EXPECT_NE(msg.find(frag), std::string::npos) << "want '" << frag << "' in: " << msg;
  }
}

std::string two_module_config(int64_t r = 4, int64_t alpha = 8) {
  return test::peft013_config_text(r, alpha, R"([
    "v_proj",
    "q_proj"
  ])");
}

std::vector<test::FixtureModule> two_modules(int64_t r = 4) {
  return {test::random_module("model.layers.0.self_attn.q_proj", r, 8, 8),
          test::random_module("model.layers.1.self_attn.v_proj", r, 8, 4)};
}

}  // namespace

// Catches: alpha/r swapped, rsLoRA's sqrt(r) forgotten, a config field written under another name
// or type than PEFT's, targets written unsorted or a regex written as a list.
TEST(LoraConfig, ScaleAndPeftJson) {
  LoraConfig c;
  EXPECT_EQ(c.r, 8);
  EXPECT_DOUBLE_EQ(c.scale(), 1.0);  // PEFT defaults: r = 8, lora_alpha = 8
  c.r = 16;
  c.alpha = 32;
  c.dropout = 0.05;
  c.target_modules = {"v_proj", "q_proj", "down_proj"};
  c.base_model_name_or_path = "Qwen/Qwen2.5-0.5B";
  EXPECT_DOUBLE_EQ(c.scale(), 2.0);
  c.use_rslora = true;
  EXPECT_DOUBLE_EQ(c.scale(), 8.0);  // 32 / sqrt(16)

  const json j = c.to_peft_json();
  // Exactly the keys of the PEFT 0.13 fixture, no more, no fewer.
  const json want = json::parse(test::peft013_config_text(16, 32, "[]"));
  for (auto it = want.begin(); it != want.end(); ++it)
    EXPECT_TRUE(j.contains(it.key())) << it.key();
  EXPECT_EQ(j.size(), want.size()) << j.dump();
  EXPECT_EQ(j["peft_type"], "LORA");
  EXPECT_EQ(j["task_type"], "CAUSAL_LM");
  EXPECT_EQ(j["bias"], "none");
  EXPECT_EQ(j["fan_in_fan_out"], false);
  EXPECT_EQ(j["use_dora"], false);
  EXPECT_EQ(j["inference_mode"], true);
  EXPECT_TRUE(j["modules_to_save"].is_null());
  EXPECT_TRUE(j["layers_to_transform"].is_null());
  EXPECT_EQ(j["rank_pattern"], json::object());
  EXPECT_EQ(j["r"], 16);
  EXPECT_EQ(j["lora_alpha"], 32);
  EXPECT_TRUE(j["lora_alpha"].is_number_integer());
  EXPECT_DOUBLE_EQ(j["lora_dropout"].get<double>(), 0.05);
  EXPECT_EQ(j["use_rslora"], true);
  EXPECT_EQ(j["target_modules"], json({"down_proj", "q_proj", "v_proj"}));
  EXPECT_EQ(j["base_model_name_or_path"], "Qwen/Qwen2.5-0.5B");

  const LoraConfig back = LoraConfig::from_peft_json(j, "x.json");
  EXPECT_EQ(back.r, 16);
  EXPECT_DOUBLE_EQ(back.alpha, 32);
  EXPECT_DOUBLE_EQ(back.dropout, 0.05);
  EXPECT_TRUE(back.use_rslora);
  EXPECT_EQ(back.target_modules, (std::vector<std::string>{"down_proj", "q_proj", "v_proj"}));
  EXPECT_EQ(back.base_model_name_or_path, "Qwen/Qwen2.5-0.5B");

  LoraConfig rx;
  rx.target_regex = R"(.*\.(q|v)_proj)";
  EXPECT_EQ(rx.to_peft_json()["target_modules"], R"(.*\.(q|v)_proj)");
  EXPECT_EQ(LoraConfig::from_peft_json(rx.to_peft_json(), "x").target_regex, rx.target_regex);
  LoraConfig all;
  all.target_modules = {"all-linear"};
  EXPECT_EQ(all.to_peft_json()["target_modules"], "all-linear");
  EXPECT_EQ(LoraConfig::from_peft_json(all.to_peft_json(), "x").target_modules, all.target_modules);
}

// Catches: matching by substring (o_proj would hit "lm_head.o_proj_x"), a regex searched instead
// of fully matched, all-linear adapting the output layer.
TEST(LoraTargets, ListRegexAllLinear) {
  LoraConfig list;
  list.target_modules = {"q_proj", "mlp.down_proj"};
  EXPECT_TRUE(lora::targets(list, "model.layers.3.self_attn.q_proj"));
  EXPECT_TRUE(lora::targets(list, "q_proj"));
  EXPECT_TRUE(lora::targets(list, "model.layers.0.mlp.down_proj"));
  EXPECT_FALSE(lora::targets(list, "model.layers.3.self_attn.xq_proj"));
  EXPECT_FALSE(lora::targets(list, "model.layers.3.self_attn.q_proj_extra"));
  EXPECT_FALSE(lora::targets(list, "model.layers.3.self_attn.v_proj"));
  EXPECT_FALSE(lora::targets(list, "model.layers.0.down_proj"));  // "mlp.down_proj" is a path tail

  LoraConfig rx;
  rx.target_regex = R"(model\.layers\.[01]\.self_attn\.(q|v)_proj)";
  EXPECT_TRUE(lora::targets(rx, "model.layers.1.self_attn.v_proj"));
  EXPECT_FALSE(lora::targets(rx, "model.layers.2.self_attn.v_proj"));
  EXPECT_FALSE(
      lora::targets(rx, "base.model.layers.1.self_attn.v_proj"));  // full match, not search

  LoraConfig all;
  all.target_modules = {"all-linear"};
  EXPECT_TRUE(lora::targets(all, "model.layers.0.mlp.gate_proj"));
  EXPECT_TRUE(lora::targets(all, "model.layers.0.self_attn.o_proj"));
  EXPECT_FALSE(lora::targets(all, "lm_head"));
}

// Catches: a lossy round trip (dtype changed on load, A and B swapped or transposed, rank or alpha
// not written), keys other than PEFT's, and leftover temp folders.
TEST(LoraAdapter, SaveLoadRoundTripIsBitExact) {
  const std::string dir = test::make_temp_dir("lora-rt");
  lora::Adapter a;
  a.config.r = 4;
  a.config.alpha = 12;
  a.config.target_modules = {"q_proj", "v_proj"};
  for (auto& m : two_modules()) a.modules[m.path] = {m.A, m.B};
  a.modules["model.layers.0.self_attn.q_proj"].A =
      a.modules["model.layers.0.self_attn.q_proj"].A.to(torch::kBFloat16);

  lora::save_adapter(dir + "/fp", a);
  const lora::Adapter b = lora::load_adapter(dir + "/fp");
  EXPECT_EQ(b.config.r, 4);
  EXPECT_DOUBLE_EQ(b.config.alpha, 12);
  ASSERT_EQ(b.modules.size(), a.modules.size());
  for (const auto& [path, m] : a.modules) {
    const auto& got = b.modules.at(path);
    EXPECT_EQ(got.A.scalar_type(), m.A.scalar_type()) << path;  // "" keeps each tensor's dtype
    EXPECT_TRUE(torch::equal(got.A, m.A)) << path;
    EXPECT_TRUE(torch::equal(got.B, m.B)) << path;
  }
  io::SafetensorsFile f(dir + "/fp/adapter_model.safetensors");
  EXPECT_EQ(f.names().size(), 4u);
  for (const char* key : {"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
                          "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight",
                          "base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight",
                          "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"})
    EXPECT_TRUE(f.contains(key)) << key;
  EXPECT_EQ(f.header().metadata.at("format"), "pt");

  lora::save_adapter(dir + "/bf16", a, "bfloat16");
  const lora::Adapter c = lora::load_adapter(dir + "/bf16");
  for (const auto& [path, m] : a.modules) {
    EXPECT_EQ(c.modules.at(path).B.scalar_type(), torch::kBFloat16);
    EXPECT_TRUE(torch::equal(c.modules.at(path).B, m.B.to(torch::kBFloat16))) << path;
  }
  for (const auto& e : std::filesystem::directory_iterator(dir))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
}

// Catches: overwriting an existing folder by deleting what else it holds; a failed save that
// leaves a half-written folder behind.
TEST(LoraAdapter, SaveIntoExistingFolderAndFailedSave) {
  const std::string dir = test::make_temp_dir("lora-save");
  lora::Adapter a;
  a.config.r = 4;
  a.config.target_modules = {"q_proj"};
  for (auto& m : two_modules()) a.modules[m.path] = {m.A, m.B};
  write_file_atomic(dir + "/README.md", "notes");
  lora::save_adapter(dir, a);
  a.config.alpha = 4;
  lora::save_adapter(dir, a);  // replaces the two files, keeps the README
  EXPECT_EQ(read_file(dir + "/README.md"), "notes");
  EXPECT_DOUBLE_EQ(lora::load_adapter(dir).config.alpha, 4);

  a.config.r = 3;  // the tensors have rank 4
  expect_error([&] { lora::save_adapter(dir + "/bad", a); }, {dir + "/bad", "rank 4", "r = 3"});
  EXPECT_FALSE(path_exists(dir + "/bad"));
  EXPECT_FALSE(path_exists(dir + "/bad.tmp." + std::to_string(::getpid())));
}

// Catches: a reader that only understands its own writer's output (key order, metadata, unsorted
// target list, PEFT's extra keys such as megatron_core / loftq_config), or that misreads the
// ".default" key spelling of PEFT's in-memory state dict.
TEST(LoraAdapter, LoadsPeftLayoutFixture) {
  for (bool default_variant : {false, true}) {
    const std::string dir = test::make_temp_dir("lora-fixture");
    const auto mods = two_modules(4);
    test::write_peft_fixture(dir, two_module_config(4, 16), mods, default_variant);
    const lora::Adapter a = lora::load_adapter(dir);
    EXPECT_EQ(a.config.r, 4);
    EXPECT_DOUBLE_EQ(a.config.alpha, 16);
    EXPECT_DOUBLE_EQ(a.config.dropout, 0.05);
    EXPECT_DOUBLE_EQ(a.config.scale(), 4.0);
    EXPECT_EQ(a.config.target_modules, (std::vector<std::string>{"q_proj", "v_proj"}));
    EXPECT_EQ(a.config.base_model_name_or_path, "Qwen/Qwen2.5-0.5B-Instruct");
    ASSERT_EQ(a.modules.size(), 2u);
    for (const auto& m : mods) {
      EXPECT_TRUE(torch::equal(a.modules.at(m.path).A, m.A)) << m.path;
      EXPECT_TRUE(torch::equal(a.modules.at(m.path).B, m.B)) << m.path;
    }
  }
}

// Catches: silently ignoring an option that changes what the adapted model computes (PEFT would
// apply it, so the merged model would differ from the trained one).
TEST(LoraConfig, RefusesWhatCannotBeAppliedExactly) {
  const std::string dir = test::make_temp_dir("lora-refuse");
  const std::string file = dir + "/adapter_config.json";
  const json base = json::parse(two_module_config());
  struct Case {
    const char* field;
    json value;
  };
  const std::vector<Case> cases = {
      {"peft_type", "IA3"},
      {"use_dora", true},
      {"fan_in_fan_out", true},
      {"bias", "lora_only"},
      {"rank_pattern", {{"q_proj", 16}}},
      {"alpha_pattern", {{"q_proj", 32}}},
      {"layers_to_transform", json::array({0, 1})},
      {"layers_to_transform", json::array()},
      {"layers_pattern", "layers"},
      {"modules_to_save", json::array({"lm_head"})},
      {"task_type", "SEQ_CLS"},
      {"layer_replication", json::array({json::array({0, 2})})},
      {"lora_bias", true},
      {"r", 0},
      {"target_modules", nullptr},
      {"target_modules", "model.(("},
  };
  for (const auto& c : cases) {
    json j = base;
    j[c.field] = c.value;
    test::write_peft_fixture(dir, j.dump(2), two_modules());
    SCOPED_TRACE(std::string(c.field) + " = " + c.value.dump());
    expect_error([&] { lora::load_adapter(dir); }, {file, std::string("'") + c.field + "'"});
  }
  // Accepted: task_type null or missing, init_lora_weights of any kind, empty modules_to_save,
  // keys of newer PEFT versions that are off.
  json ok = base;
  ok["task_type"] = nullptr;
  ok["init_lora_weights"] = "gaussian";
  ok["modules_to_save"] = json::array();
  ok["exclude_modules"] = nullptr;
  ok["use_qalora"] = false;
  ok["some_future_key"] = {{"x", 1}};
  test::write_peft_fixture(dir, ok.dump(2), two_modules());
  EXPECT_NO_THROW(lora::load_adapter(dir));
}

// Catches: half pairs, wrong ranks, DoRA / embedding tensors or stray keys loaded without a word,
// and a pickle-only folder reported as a generic "file missing".
TEST(LoraAdapter, RefusesBadTensors) {
  const std::string root = test::make_temp_dir("lora-bad");
  const std::string q = "model.layers.0.self_attn.q_proj";
  int n = 0;
  auto check = [&](const std::vector<test::FixtureModule>& mods,
                   const std::map<std::string, torch::Tensor>& extra,
                   const std::vector<std::string>& fragments) {
    const std::string dir = root + "/" + std::to_string(n++);
    test::write_peft_fixture(dir, two_module_config(4), mods, false, extra);
    std::vector<std::string> want = {dir + "/adapter_model.safetensors"};
    want.insert(want.end(), fragments.begin(), fragments.end());
    expect_error([&] { lora::load_adapter(dir); }, want);
  };
  check({{q, torch::randn({4, 8}), {}}}, {},
        {"base_model.model." + q + ".lora_B.weight", "missing"});
  check({{q, {}, torch::randn({8, 4})}}, {},
        {"base_model.model." + q + ".lora_A.weight", "missing"});
  check({{q, torch::randn({2, 8}), torch::randn({8, 2})}}, {},
        {"lora_A.weight", "rank 2", "r = 4"});
  check({{q, torch::randn({4, 8}), torch::randn({8, 3})}}, {},
        {"lora_B.weight", "rank 3", "r = 4"});
  check({{q, torch::randn({4, 8, 1}), torch::randn({8, 4})}}, {}, {"lora_A.weight", "2-D"});
  check(two_modules(),
        {{"base_model.model.model.embed_tokens.lora_embedding_A", torch::randn({4, 16})}},
        {"lora_embedding_A", "DoRA / embedding adapters are not supported"});
  check(two_modules(), {{"base_model.model." + q + ".lora_magnitude_vector", torch::randn({8})}},
        {"lora_magnitude_vector", "DoRA / embedding adapters are not supported"});
  check(two_modules(), {{"base_model.model." + q + ".lora_B.bias", torch::randn({8})}},
        {"lora_B.bias", "unexpected key"});
  check(two_modules(), {{"model.layers.0.self_attn.q_proj.lora_A.weight", torch::randn({4, 8})}},
        {"unexpected key"});

  const std::string pickle = root + "/pickle";
  make_dirs(pickle);
  write_file_atomic(pickle + "/adapter_config.json", two_module_config());
  write_file_atomic(pickle + "/adapter_model.bin", "PK");
  expect_error([&] { lora::load_adapter(pickle); },
               {pickle + "/adapter_model.bin", "pickle", "safetensors"});
  expect_error([&] { lora::load_adapter(root); }, {root, "adapter_config.json"});
}
