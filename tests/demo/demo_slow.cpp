// `safekey demo --quick` end to end as a real process: the pipeline runs, losses fall, every file and
// the report exist, and a rerun skips the finished stages.
#include <gtest/gtest.h>

#include "safekey/util/file.h"
#include "safekey/util/json.h"
#include "support/support.h"

using namespace safekey;

TEST(DemoQuick, RunsEndToEndAndCaches) {
  const std::string out = test::make_temp_dir("demo_quick");
  const auto r = test::run_safekey({"demo", "--quick", "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err.substr(r.err.size() > 4000 ? r.err.size() - 4000 : 0);
  for (const char* f : {"plan.json", "report.md", "report.json", "comparison.svg", "attention.svg",
                        "world/stage1.json", "world/stage2.json", "world/eval/harmful_heldout_wrappers.jsonl",
                        "init/config.json", "init/model.safetensors", "init/tokenizer.json",
                        "init/tokenizer_config.json", "eval/base.json", "eval/sft-s1.json",
                        "eval/safekey-s2.json", "analysis/safekey-s1.json"})
    EXPECT_TRUE(path_exists(out + "/" + f)) << f;
  // Losses fall in stage 1 and in every stage-2 run.
  const json s1 = read_json_file(out + "/stage1/done.json");
  EXPECT_LT(s1["last_sft_loss"].get<double>(), s1["first_sft_loss"].get<double>());
  for (const char* run : {"sft-s1", "sft-s2", "safekey-s1", "safekey-s2"}) {
    const json d = read_json_file(out + "/stage2/" + run + "/done.json");
    EXPECT_LT(d["last_sft_loss"].get<double>(), d["first_sft_loss"].get<double>()) << run;
  }
  const json rep = read_json_file(out + "/report.json");
  EXPECT_EQ(rep["models"].size(), 5u);  // base + 2 methods x 2 seeds
  EXPECT_TRUE(rep.contains("paired_safekey_minus_sft"));
  EXPECT_EQ(rep["attention"].size(), 3u);
  const std::string md = read_file(out + "/report.md");
  EXPECT_NE(md.find("Paired difference SafeKey"), std::string::npos);
  EXPECT_NE(md.find("harmful_heldout_wrappers"), std::string::npos);
  // The model folder carries the R1-style chat template.
  const json tc = read_json_file(out + "/init/tokenizer_config.json");
  EXPECT_NE(tc["chat_template"].get<std::string>().find("<｜Assistant｜><think>\\n"), std::string::npos);

  // A rerun skips every finished stage.
  const auto r2 = test::run_safekey({"demo", "--quick", "--out", out});
  ASSERT_EQ(r2.exit_code, 0) << r2.err;
  EXPECT_NE(r2.err.find("stage 1 (helpful-only base): cached"), std::string::npos) << r2.err;
  EXPECT_EQ(r2.err.find("examples\n"), std::string::npos) << r2.err;
}

TEST(DemoQuick, BadTemplateFileIsOneClearError) {
  const std::string dir = test::make_temp_dir("demo_bad");
  write_file_atomic(dir + "/t.jsonl", "{\"family\": \"x\", \"template\": \"no placeholder\"}\n");
  const auto r = test::run_safekey({"demo", "--quick", "--out", dir + "/run", "--jailbreak-templates", dir + "/t.jsonl"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("t.jsonl:1"), std::string::npos) << r.err;
}
