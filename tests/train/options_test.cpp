// The training option table (train/options.h) and what comes from it: the flags of `safekey train`,
// YAML / JSON config files with key=value overrides, run_config.json, the docs table, and the
// recipes under recipes/.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "safekey/train/options.h"
#include "safekey/util/file.h"
#include "support/support.h"
#include "train/tiny.h"

using namespace safekey;
using namespace safekey::train;

namespace {

std::string source_path(const std::string& rel) { return std::string(SAFEKEY_SOURCE_DIR) + "/" + rel; }

TrainConfig config_from_file(const std::string& path) {
  config::Values v(train_schema(), /*read_env=*/false);
  v.merge_file(path);
  TrainConfig c;
  apply_values(v, c);
  return c;
}

// run_config.json keeps the keys it had before the option table existed, so that checkpoints written
// by earlier versions still resume and the demo's cached stages still match. Catches: a renamed key,
// an operational option (logging, saving) that starts to count as defining the run, or a
// run-defining one that stops being compared.
TEST(TrainOptions, RunConfigKeysAreTheEstablishedOnes) {
  const std::set<std::string> want = {
      "model_dir", "data_path", "num_examples_in_process", "epochs", "batch_size", "grad_accum", "lr",
      "weight_decay", "beta1", "beta2", "eps", "warmup_ratio", "scheduler", "max_grad_norm", "max_seq_len", "qmm",
      "head", "key_weight", "head_weight", "head_theta", "last_k_epoch", "head_detach", "qmm_no_mask", "qmm_pass",
      "gradient_checkpointing", "reference_compat", "dtype", "device", "seed", "shuffle", "zero_stage", "lora_r",
      "lora_alpha", "lora_dropout", "lora_target_modules", "use_rslora", "skip_invalid", "benign_sources"};
  const TrainConfig c;
  const json j = c.to_json();
  std::set<std::string> got;
  for (auto& [k, v] : j.items()) got.insert(k);
  EXPECT_EQ(got, want);
  EXPECT_EQ(j["lr"], 1e-5);
  EXPECT_EQ(j["qmm_pass"], "truncated");
  EXPECT_EQ(j["lora_target_modules"], json({"q_proj", "v_proj"}));
}

// Catches a row whose default differs from the TrainConfig field (the table reads it from the field,
// so this holds by construction; the check is that values read back unchanged).
TEST(TrainOptions, DefaultsAreTheTrainConfigDefaults) {
  config::Values v(train_schema(), false);
  TrainConfig c;
  c.model_dir = "changed";
  apply_values(v, c);
  EXPECT_EQ(c.to_json().dump(), [] {
    TrainConfig d;
    return d.to_json().dump();
  }());
}

// Catches a table change that is not regenerated into docs/training.md. To update the docs:
// scripts/update_options_doc.sh (splices `safekey train --print-options-markdown` between the markers).
TEST(TrainOptions, DocsTableIsTheGeneratedOne) {
  const std::string doc = read_file(source_path("docs/training.md"));
  const std::string begin = "<!-- options:begin", end = "<!-- options:end -->";
  const size_t a = doc.find(begin), b = doc.find(end);
  ASSERT_NE(a, std::string::npos) << "docs/training.md has no '" << begin << "' marker";
  ASSERT_NE(b, std::string::npos);
  const size_t body = doc.find('\n', a) + 1;
  EXPECT_EQ(doc.substr(body, b - body), train_schema().markdown())
      << "docs/training.md's options table is stale: run scripts/update_options_doc.sh";
  // The generator the docs name prints the same table.
  auto r = test::run_safekey({"train", "--print-options-markdown"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, train_schema().markdown());
}

// Catches a flag of the table that the command line does not take, or takes with another default
// (the shared --device / --seed rows of every subcommand included).
TEST(TrainOptions, EveryFlagIsInTheHelpWithTheTablesDefault) {
  auto r = test::run_safekey({"train", "--help"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const auto& o : train_schema().options()) {
    if (o.flag.empty()) continue;
    // "  --flag V   help [default: x]", the help on the next line when the flag is long.
    size_t at = r.out.find("\n  --" + o.flag);
    while (at != std::string::npos && r.out[at + 5 + o.flag.size()] != ' ' && r.out[at + 5 + o.flag.size()] != '\n')
      at = r.out.find("\n  --" + o.flag, at + 1);
    ASSERT_NE(at, std::string::npos) << "--" << o.flag << " is missing from safekey train --help";
    const std::string entry = r.out.substr(at + 1, r.out.find("\n  --", at + 1) - at - 1);
    const std::string dflt = "[default: " + (o.default_value.empty() ? std::string("none") : o.default_value) + "]";
    EXPECT_NE(entry.find(dflt), std::string::npos) << "--" << o.flag << ": " << entry;
    EXPECT_EQ(entry.find(" V ") != std::string::npos || entry.find(" V\n") != std::string::npos,
              o.type != config::Type::Bool)
        << "--" << o.flag << " should " << (o.type == config::Type::Bool ? "" : "not ") << "be a switch";
  }
}

// Catches a recipe with an unknown or misspelt key, a wrong type, or a setting the trainer refuses.
TEST(TrainOptions, EveryRecipeParsesAndValidates) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(source_path("recipes"))) {
    if (e.path().extension() != ".yaml") continue;
    SCOPED_TRACE(e.path().string());
    TrainConfig c;
    ASSERT_NO_THROW(c = config_from_file(e.path().string()));
    EXPECT_NO_THROW(validate_config(c));
    EXPECT_EQ(c.max_seq_len, 8192);
    EXPECT_EQ(c.seed, 2002);
    EXPECT_EQ(c.batch_size * c.grad_accum * (c.lora_r > 0 ? 1 : 16), 128) << "the reference's effective batch";
    ++n;
  }
  EXPECT_GE(n, 5);
}

// The ablations and the baseline are the SafeKey recipe with objectives off: catches a recipe that
// drifts from the one it is compared with.
TEST(TrainOptions, AblationRecipesDifferOnlyInTheirObjectives) {
  const json base = config_from_file(source_path("recipes/safekey_r1_distill_qwen_7b_16gpu.yaml")).to_json();
  EXPECT_EQ(base["qmm"], true);
  EXPECT_EQ(base["head"], true);
  EXPECT_EQ(base["lr"], 1e-5);
  EXPECT_EQ(base["epochs"], 10);
  EXPECT_EQ(base["zero_stage"], 3);
  const std::pair<const char*, std::pair<bool, bool>> variants[] = {
      {"recipes/head_only_r1_distill_qwen_7b_16gpu.yaml", {false, true}},
      {"recipes/qmm_only_r1_distill_qwen_7b_16gpu.yaml", {true, false}},
      {"recipes/sft_r1_distill_qwen_7b_16gpu.yaml", {false, false}}};
  for (const auto& [path, objectives] : variants) {
    SCOPED_TRACE(path);
    json j = config_from_file(source_path(path)).to_json();
    EXPECT_EQ(j["qmm"], objectives.first);
    EXPECT_EQ(j["head"], objectives.second);
    j["qmm"] = base["qmm"];
    j["head"] = base["head"];
    EXPECT_EQ(j, base);
  }
}

TEST(TrainOptions, UnknownKeyOnTheCommandLineNamesTheNearest) {
  const std::string dir = test::make_temp_dir("options_cli");
  write_file_atomic(dir + "/r.yaml", "lr: 1e-5\nlora:\n  rank: 8\n");
  auto r = test::run_safekey({"train", "--config", dir + "/r.yaml", "--model", "m", "--data", "d", "--output-dir",
                              dir + "/o"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(dir + "/r.yaml:3: unknown key 'lora.rank' (nearest known key: 'lora.r')"), std::string::npos)
      << r.err;
  r = test::run_safekey({"train", "--model", "m", "--data", "d", "--output-dir", dir + "/o", "warmup=0.1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("unknown key 'warmup' in 'warmup=0.1' (nearest known key: 'warmup_ratio')"), std::string::npos)
      << r.err;
  r = test::run_safekey({"train", "--model", "m", "--data", "d", "--output-dir", dir + "/o", "epochs=two"});
  EXPECT_NE(r.err.find("epochs: expected an integer, got 'two'"), std::string::npos) << r.err;
}

// The acceptance check of the option table: a YAML recipe and the same run given as flags (the
// reference's spellings among them) write the same run_config.json. One optimizer step each.
TEST(TrainOptions, YamlRecipeAndFlagsGiveTheSameRunConfig) {
  const std::string dir = test::make_temp_dir("options_same");
  const std::string model = test::make_tiny_model(dir + "/model");
  const std::string data = test::make_tiny_data(dir + "/data.jsonl", 8);
  write_file_atomic(dir + "/recipe.yaml",
                    "model_dir: " + model + "\n"
                    "data_path: " + data + "\n"
                    "epochs: 3\n"
                    "batch_size: 2\n"
                    "grad_accum: 2\n"
                    "lr: 2.0e-3\n"
                    "warmup_ratio: 0.1\n"
                    "scheduler: constant\n"
                    "qmm: true\n"
                    "head: true\n"
                    "head_theta: 0.25\n"
                    "last_k_epoch: 2\n"
                    "max_seq_len: 64\n"
                    "seed: 7\n"
                    "benign_sources: [4o_rewrite, benign]\n"
                    "lora:\n"
                    "  r: 4\n"
                    "  alpha: 16\n"
                    "  target_modules: [q_proj, k_proj]\n"
                    "max_steps: 1\n");
  auto a = test::run_safekey({"train", "--config", dir + "/recipe.yaml", "output_dir=" + dir + "/a", "--threads", "1"});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  auto b = test::run_safekey({"train", "--model_name_or_path", model, "--train_file", data, "--output_dir", dir + "/b",
                              "--n_epochs", "3", "--train_bsz_per_gpu", "2", "--gradient-accumulation-steps", "2",
                              "--lr", "2e-3", "--warmup_rates", "0.1", "--lr-scheduler-type", "constant", "--qmm",
                              "--safety_gate", "True", "--head-theta", "0.25", "--last_k_epoch", "2",
                              "--max_seq_len", "64", "--seed", "7", "--benign-sources", "4o_rewrite,benign",
                              "--lora-r", "4", "--lora-alpha", "16", "--lora-target-modules", "q_proj,k_proj",
                              "--max-steps", "1", "--threads", "1"});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  const json ja = read_json_file(dir + "/a/run_config.json"), jb = read_json_file(dir + "/b/run_config.json");
  EXPECT_EQ(ja, jb);
  EXPECT_EQ(ja["lr"], 2e-3);
  EXPECT_EQ(ja["lora_r"], 4);
  EXPECT_EQ(ja["head_theta"], 0.25);
  // flags.json holds the resolved values under the flag names, from the file as from the flags.
  const json fa = read_json_file(dir + "/a/flags.json"), fb = read_json_file(dir + "/b/flags.json");
  EXPECT_EQ(fa["learning-rate"], "0.002");
  EXPECT_EQ(fa["lora-target-modules"], "q_proj,k_proj");
  for (auto& [k, v] : fa.items()) {
    if (k == "output-dir" || k == "config") continue;
    EXPECT_EQ(v, fb[k]) << k;
  }
}

// Precedence: defaults < --config files (in order) < flags < key=value overrides.
TEST(TrainOptions, FlagsBeatTheFileAndOverridesBeatFlags) {
  const std::string dir = test::make_temp_dir("options_order");
  const std::string model = test::make_tiny_model(dir + "/model");
  const std::string data = test::make_tiny_data(dir + "/data.jsonl", 4);
  write_file_atomic(dir + "/one.yaml", "model: " + model + "\ndata: " + data + "\nlr: 1e-3\nseed: 1\nepochs: 2\n");
  write_file_atomic(dir + "/two.json", R"({"seed": 2, "epochs": 1, "max-steps": 1, "warmup_ratio": 0.5})");
  auto r = test::run_safekey({"train", "--config", dir + "/one.yaml", "--config", dir + "/two.json", "--seed", "3",
                              "--warmup-ratio", "0.25", "warmup_ratio=0", "--output-dir", dir + "/o", "--threads", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = read_json_file(dir + "/o/run_config.json");
  EXPECT_EQ(j["lr"], 1e-3);           // the first file
  EXPECT_EQ(j["epochs"], 1);          // the second file over the first
  EXPECT_EQ(j["seed"], 3);            // the flag over both
  EXPECT_EQ(j["warmup_ratio"], 0.0);  // the override over the flag
}

}  // namespace
