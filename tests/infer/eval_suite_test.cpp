// `safekey eval --suite paper` with a tiny random model generating for real on small files in each
// published layout (GPQA CSV, MMLU-Pro JSONL, WildChat CSV, WildJailbreak TSV, HumanEval gzip):
// every found benchmark is generated, judged or graded (HumanEval in the sandbox) and lands in the
// suite table; the missing ones are listed as skipped.
#include <gtest/gtest.h>

#include "infer/tiny_model.h"

namespace safekey {
namespace {

// Catches: a suite path that cannot generate (prompts of the new kinds not built, n_options /
// task_id not carried into the results) or that stops at the first missing file.
TEST(EvalSuite, TinyModelOverEveryLayout) {
  SAFEKEY_REQUIRE_TINY_MODEL_REFS();
  const std::string he = test::shared_dir() + "/data/humaneval/HumanEval.jsonl.gz";
  SAFEKEY_REQUIRE_DIR(he);
  const std::string model = test::make_tiny_model("evalsuite_tiny", 1024);
  const std::string root = test::make_temp_dir("evalsuite");
  const std::string d = root + "/data";
  for (const char* sub : {"gpqa", "mmlu_pro", "wildchat", "wildjailbreak"})
    make_dirs(d + "/" + sub);
  write_file_atomic(d + "/gpqa/gpqa_diamond.csv",
                    "Question,Correct Answer,Incorrect Answer 1,Incorrect Answer 2,Incorrect "
                    "Answer 3\nQ1?,a,b,c,d\n");
  write_file_atomic(d + "/mmlu_pro/test.jsonl",
                    "{\"question\": \"Q?\", \"options\": [\"x\", \"y\", \"z\"], \"answer_index\": "
                    "1, \"category\": \"law\"}\n");
  write_file_atomic(d + "/wildchat/WildChat.csv", "prompt\nsay something rude\n");
  write_file_atomic(
      d + "/wildjailbreak/eval.tsv",
      "adversarial\tvanilla\tdata_type\tlabel\nwrapped ask\task\tadversarial_harmful\t1\n");
  const std::string py = path_exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  auto r =
      test::run_safekey({"eval", "--model", model, "--suite", "paper", "--data-dir", d,
                         "--bench-file", "humaneval=" + he, "--limit", "1", "--max-new-tokens", "6",
                         "--threads", "1", "--sandbox-python", py, "--out", root + "/ev"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string md = read_file(root + "/ev/suite.md");
  const std::string col = model.substr(model.find_last_of('/') + 1);
  EXPECT_NE(md.find("| benchmark | " + col + " |"), std::string::npos) << md;
  for (const char* b : {"wildchat", "wildjailbreak", "gpqa", "humaneval", "mmlu_pro"}) {
    EXPECT_NE(md.find(std::string("| ") + b + " | "), std::string::npos) << b << "\n" << md;
    EXPECT_TRUE(path_exists(root + "/ev/" + b + ".json")) << b;
  }
  EXPECT_NE(md.find("- math500: not found"), std::string::npos) << md;
  json g = read_json_file(root + "/ev/gpqa.json");
  EXPECT_EQ(g["data"][0]["n_options"], 4);
  EXPECT_EQ(g["data"][0]["grade"].size(), 1u);
  json h = read_json_file(root + "/ev/humaneval.json");
  EXPECT_EQ(h["data"][0]["task_id"], "HumanEval/0");
  EXPECT_EQ(h["data"][0]["grade"][0]["passed"], false);  // a random model does not solve it
  EXPECT_TRUE(path_exists(root + "/ev/suite.svg"));
  EXPECT_TRUE(path_exists(root + "/ev/report.md"));
}

}  // namespace
}  // namespace safekey
