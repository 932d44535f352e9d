// config::Schema and config::Values on a small schema: typed values from text, JSON and YAML, nested
// and dotted keys, precedence, and the errors a user sees (file, line, key, nearest key, type).
#include <gtest/gtest.h>

#include "safekey/config/schema.h"
#include "safekey/util/file.h"
#include "support/support.h"

using namespace safekey;
using config::Type;

namespace {

config::Option opt(const char* key, const char* flag, Type t, const char* dflt, const char* aliases = "") {
  config::Option o;
  o.key = key;
  o.flag = flag;
  o.type = t;
  o.default_value = dflt;
  o.aliases = aliases;
  o.section = "test";
  return o;
}

const config::Schema& schema() {
  static const config::Schema s({opt("lr", "learning-rate", Type::Float, "1e-05", "learning_rate_alias"),
                                 opt("epochs", "num-train-epochs", Type::Int, "5", "n_epochs"),
                                 opt("qmm", "key-sentence-prediction", Type::Bool, "false"),
                                 opt("scheduler", "lr-scheduler-type", Type::String, "cosine"),
                                 opt("lora.r", "lora-r", Type::Int, "0"),
                                 opt("lora.target_modules", "lora-target-modules", Type::List, "q_proj,v_proj"),
                                 opt("dist.timeout_s", "dist-timeout", Type::Float, "600"),
                                 opt("", "plan", Type::Bool, "false")});
  return s;
}

std::string write(const std::string& dir, const std::string& name, const std::string& text) {
  write_file_atomic(dir + "/" + name, text);
  return dir + "/" + name;
}

using test::error_of;

TEST(ConfigSchema, EverySpellingFindsItsOption) {
  const auto& s = schema();
  for (const char* sp : {"lr", "learning-rate", "learning_rate", "learning_rate_alias", "learning-rate-alias"})
    EXPECT_EQ(s.find(sp), &s.at("lr")) << sp;
  // A dotted key, its run_config.json spelling and its flag.
  for (const char* sp : {"lora.r", "lora_r", "lora-r"}) EXPECT_EQ(s.find(sp), &s.at("lora.r")) << sp;
  EXPECT_EQ(s.find("lora"), nullptr);
  EXPECT_EQ(s.find("rl"), nullptr);
}

TEST(ConfigSchema, TwoOptionsWithOneSpellingAreRefused) {
  // The second option's alias is the first one's key: a config file could not say which it means.
  const std::string e = error_of([] {
    config::Schema({opt("lr", "learning-rate", Type::Float, "1"), opt("lr2", "lr-two", Type::Float, "1", "lr")});
  });
  EXPECT_NE(e.find("'lr' names two options"), std::string::npos) << e;
}

TEST(ConfigSchema, NearestKeyByEditDistance) {
  EXPECT_EQ(config::edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(config::edit_distance("", "abc"), 3u);
  EXPECT_EQ(schema().nearest("lora.rank"), "lora.r");
  EXPECT_EQ(schema().nearest("epoch"), "epochs");
  EXPECT_EQ(schema().nearest("learnig_rate"), "lr");
  // A cut-short key is near the key it starts: `dist.time` is not nearest to the short `lr`.
  EXPECT_EQ(schema().nearest("dist.time"), "dist.timeout_s");
  EXPECT_EQ(schema().nearest("lora"), "lora.r");
  const config::Option* near_plan = schema().find(schema().nearest("plan"));
  ASSERT_NE(near_plan, nullptr);
  EXPECT_FALSE(near_plan->key.empty()) << "a flag-only option is never suggested as a key";
}

TEST(ConfigSchema, TextIsParsedByType) {
  const auto& s = schema();
  EXPECT_EQ(config::parse_text(s.at("lr"), "2e-5", "x"), 2e-5);
  EXPECT_EQ(config::parse_text(s.at("epochs"), "3", "x"), 3);
  EXPECT_EQ(config::parse_text(s.at("qmm"), "yes", "x"), true);
  EXPECT_EQ(config::parse_text(s.at("lora.target_modules"), "a,b", "x"), json({"a", "b"}));
  // Type errors name where, the key and the expected type.
  std::string e = error_of([&] { config::parse_text(s.at("epochs"), "3.5", "recipe.yaml:4"); });
  EXPECT_EQ(e, "recipe.yaml:4: epochs: expected an integer, got '3.5'");
  e = error_of([&] { config::parse_text(s.at("lr"), "fast", "--learning-rate"); });
  EXPECT_EQ(e, "--learning-rate: lr: expected a number, got 'fast'");
  e = error_of([&] { config::parse_text(s.at("qmm"), "maybe", "x"); });
  EXPECT_NE(e.find("qmm: expected true or false"), std::string::npos) << e;
}

TEST(ConfigSchema, ChoicesAreChecked) {
  auto o = opt("scheduler", "lr-scheduler-type", Type::String, "cosine");
  o.choices = "cosine|constant";
  EXPECT_EQ(config::parse_text(o, "constant", "x"), "constant");
  EXPECT_EQ(error_of([&] { config::parse_text(o, "linear", "f.yaml:2"); }),
            "f.yaml:2: scheduler: expected one of cosine|constant, got 'linear'");
}

TEST(ConfigSchema, ShortestTextThatReadsBack) {
  EXPECT_EQ(config::to_text(json(1e-5)), "1e-05");
  EXPECT_EQ(config::to_text(json(0.95)), "0.95");
  EXPECT_EQ(config::to_text(json(600.0)), "600");
  EXPECT_EQ(config::to_text(json(0.1 + 0.2)), "0.30000000000000004");
  EXPECT_EQ(config::to_text(json({"q_proj", "v_proj"})), "q_proj,v_proj");
  EXPECT_EQ(config::to_text(json(true)), "true");
}

TEST(ConfigValues, YamlNestedAndDottedKeysThenFlagsThenOverrides) {
  const std::string dir = test::make_temp_dir("config_yaml");
  const std::string f = write(dir, "r.yaml",
                              "# a recipe\n"
                              "lr: 2e-5\n"
                              "n_epochs: 3          # the reference's spelling\n"
                              "lora:\n"
                              "  r: 16\n"
                              "  target_modules: [q_proj, k_proj, v_proj]\n"
                              "dist.timeout_s: 60\n"
                              "qmm: yes\n");
  config::Values v(schema(), /*read_env=*/false);
  EXPECT_TRUE(v.is_default("lr"));
  v.merge_file(f);
  EXPECT_EQ(v.get("lr"), 2e-5);
  EXPECT_EQ(v.get("epochs"), 3);
  EXPECT_EQ(v.get("lora.r"), 16);
  EXPECT_EQ(v.get("lora.target_modules"), json({"q_proj", "k_proj", "v_proj"}));
  EXPECT_EQ(v.get("dist.timeout_s"), 60.0);
  EXPECT_EQ(v.get("qmm"), true);
  EXPECT_EQ(v.origin("lora.r"), f + ":5");
  EXPECT_EQ(v.get("scheduler"), "cosine");  // untouched: the default
  // A flag after the file wins over it, and an override after the flag wins over both.
  v.set_text(schema().at("lora.r"), "8", "--lora-r");
  EXPECT_EQ(v.get("lora.r"), 8);
  v.apply_override("lora.r=32");
  EXPECT_EQ(v.get("lora.r"), 32);
  EXPECT_EQ(v.origin("lora.r"), "override 'lora.r=32'");
  v.apply_override("lora-target-modules=all-linear");
  EXPECT_EQ(v.get("lora.target_modules"), json({"all-linear"}));
}

TEST(ConfigValues, JsonWithFlagNamesAndNestedObjects) {
  const std::string dir = test::make_temp_dir("config_json");
  const std::string f = write(dir, "c.json",
                              R"({"learning-rate": 0.001, "num_train_epochs": "2", "lora": {"r": 4},
                                  "lora_target_modules": ["o_proj"], "key-sentence-prediction": true})");
  config::Values v(schema(), false);
  v.merge_file(f);
  EXPECT_EQ(v.get("lr"), 0.001);
  EXPECT_EQ(v.get("epochs"), 2);
  EXPECT_EQ(v.get("lora.r"), 4);
  EXPECT_EQ(v.get("lora.target_modules"), json({"o_proj"}));
  EXPECT_EQ(v.get("qmm"), true);
}

TEST(ConfigValues, UnknownKeyNamesFileLineKeyAndNearest) {
  const std::string dir = test::make_temp_dir("config_unknown");
  const std::string f = write(dir, "r.yaml", "lr: 1e-5\nlora:\n  r: 8\n  rank: 16\n");
  config::Values v(schema(), false);
  EXPECT_EQ(error_of([&] { v.merge_file(f); }), f + ":4: unknown key 'lora.rank' (nearest known key: 'lora.r')");
  const std::string j = write(dir, "c.json", R"({"epoch": 3})");
  EXPECT_EQ(error_of([&] { v.merge_file(j); }), j + ": unknown key 'epoch' (nearest known key: 'epochs')");
  EXPECT_EQ(error_of([&] { v.apply_override("lora.rr=4"); }),
            "command line: unknown key 'lora.rr' in 'lora.rr=4' (nearest known key: 'lora.r')");
  EXPECT_NE(error_of([&] { v.apply_override("lr"); }).find("neither a flag nor a key=value"), std::string::npos);
  // A flag-only option is not a key.
  const std::string p = write(dir, "p.yaml", "plan: true\n");
  EXPECT_EQ(error_of([&] { v.merge_file(p); }), p + ":1: 'plan' is a command-line flag (--plan), not a config key");
  EXPECT_EQ(error_of([&] { v.apply_override("plan=true"); }),
            "command line: 'plan' is a flag: write --plan instead of 'plan=true'");
}

TEST(ConfigValues, WrongTypesAndDoubleSettingsAreErrors) {
  const std::string dir = test::make_temp_dir("config_types");
  config::Values v(schema(), false);
  std::string f = write(dir, "a.yaml", "epochs: three\n");
  EXPECT_EQ(error_of([&] { v.merge_file(f); }), f + ":1: epochs: expected an integer, got 'three'");
  f = write(dir, "b.yaml", "lr: [1, 2]\n");
  EXPECT_EQ(error_of([&] { v.merge_file(f); }), f + ":1: lr: expected a number, got [\"1\",\"2\"]");
  f = write(dir, "c.yaml", "lr:\n  a: 1\n");  // a mapping where a value belongs
  EXPECT_NE(error_of([&] { v.merge_file(f); }).find(":1: lr: expected a value or a list, got a mapping"),
            std::string::npos);
  f = write(dir, "d.yaml", "lr: 1e-5\nepochs: 2\nlearning_rate: 3e-5\n");
  EXPECT_EQ(error_of([&] { v.merge_file(f); }),
            f + ":3: 'learning_rate' sets lr, which this file already sets at " + f + ":1");
  f = write(dir, "e.json", R"({"epochs": 2.5})");
  EXPECT_EQ(error_of([&] { v.merge_file(f); }), f + ": epochs: expected an integer, got 2.5");
  f = write(dir, "f.yaml", "lr: [1\n");
  EXPECT_NE(error_of([&] { v.merge_file(f); }).find(f + ":2: invalid YAML"), std::string::npos);
  EXPECT_NE(error_of([&] { v.merge_file(dir + "/missing.yaml"); }).find("no such config file"), std::string::npos);
}

TEST(ConfigValues, EnvironmentSitsBetweenDefaultAndFile) {
  auto o = opt("dist.timeout_s", "dist-timeout", Type::Float, "600");
  o.env = "SAFEKEY_TEST_SCHEMA_TIMEOUT";
  config::Schema s({o});
  setenv("SAFEKEY_TEST_SCHEMA_TIMEOUT", "42", 1);
  config::Values v(s);
  EXPECT_EQ(v.get("dist.timeout_s"), 42.0);
  EXPECT_EQ(v.origin("dist.timeout_s"), "environment SAFEKEY_TEST_SCHEMA_TIMEOUT");
  const std::string dir = test::make_temp_dir("config_env");
  v.merge_file(write(dir, "t.yaml", "dist:\n  timeout_s: 7\n"));
  EXPECT_EQ(v.get("dist.timeout_s"), 7.0);
  unsetenv("SAFEKEY_TEST_SCHEMA_TIMEOUT");
}

TEST(ConfigSchema, MarkdownTableEscapesAndMarksRunDefiningOptions) {
  auto a = opt("scheduler", "lr-scheduler-type", Type::String, "cosine");
  a.choices = "cosine|constant";
  a.defines_run = true;
  a.help = "schedule";
  auto b = opt("plot_steps", "plot-steps", Type::Int, "-1");
  b.help = "a | b";
  const std::string md = config::Schema({a, b}).markdown();
  EXPECT_NE(md.find("| `scheduler` | `--lr-scheduler-type` | cosine\\|constant | `cosine` | yes | schedule |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| `plot_steps` | `--plot-steps` | integer | `-1` |  | a \\| b |"), std::string::npos) << md;
}

}  // namespace
