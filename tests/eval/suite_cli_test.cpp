// `safekey judge --judge humaneval` and `safekey eval` over HumanEval, GPQA, MMLU-Pro, WildChat and
// WildJailbreak as real processes, without a model: the results files stand in for a model that
// answers the canonical solutions (or wrong ones), and eval reuses them (judge + grade + report).
// The suite run reads small files in each published layout and checks the paper-layout table.
#include <gtest/gtest.h>

#include <sstream>

#include "safekey/util/file.h"
#include "safekey/util/gzip.h"
#include "safekey/util/json.h"
#include "support/support.h"

namespace safekey {
namespace {

std::string humaneval_gz() { return test::shared_dir() + "/data/humaneval/HumanEval.jsonl.gz"; }
std::string python() {
  return test::env_or("SAFEKEY_TEST_PYTHON",
                      path_exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3");
}

std::vector<json> humaneval_tasks() {
  std::vector<json> tasks;
  std::istringstream in(read_gzip_file(humaneval_gz()));
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) tasks.push_back(json::parse(line));
  return tasks;
}

// Stand-in replies: the canonical body in a fence after the thinking, or a wrong body.
std::string reply(const json& task, bool right) {
  return "<think>I will write it.</think>\n```python\n" +
         (right ? task["canonical_solution"].get<std::string>()
                : std::string("    return None\n")) +
         "```\n";
}

// Catches: `judge` not knowing humaneval, items without `instruction` rejected, labels not written
// back, and pass@1 computed over responses instead of tasks.
TEST(SuiteCli, JudgeHumanevalScoresAnyResultsFileWithTaskIds) {
  SAFEKEY_REQUIRE_DIR(humaneval_gz());
  auto tasks = humaneval_tasks();
  const std::string dir = test::make_temp_dir("suite-cli");
  const std::string f = dir + "/samples.jsonl";
  std::string lines;
  for (int i = 0; i < 3; ++i)
    lines +=
        json{{"task_id", tasks[i]["task_id"]}, {"response", {reply(tasks[i], i != 2)}}}.dump() +
        "\n";
  write_file_atomic(f, lines);
  auto r = test::run_safekey({"judge", "--judge", "humaneval", "--results", f, "--data-dir",
                              test::shared_dir() + "/data", "--sandbox-python", python(),
                              "--sandbox-jobs", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_NE(r.out.find("3 tasks, 3 responses, 2 passed"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("pass@1 66.7%"), std::string::npos) << r.out;
  json back = json::parse(read_file(f).substr(0, read_file(f).find('\n')));  // meta line first
  EXPECT_TRUE(back.contains("meta_info")) << back.dump();
  std::string all = read_file(f);
  EXPECT_NE(all.find("\"status\":\"passed\""), std::string::npos);
  EXPECT_NE(all.find("\"status\":\"failed\""), std::string::npos);
}

// Catches: eval not grading humaneval by running code, or not reusing results that match.
TEST(SuiteCli, EvalHumanevalWithStandInModelsRightAndWrong) {
  SAFEKEY_REQUIRE_DIR(humaneval_gz());
  auto tasks = humaneval_tasks();
  for (bool right : {true, false}) {
    const std::string out = test::make_temp_dir("suite-cli");
    json doc = {{"meta_info", json::object()}, {"data", json::array()}};
    // The right answers in eval's own layout; the wrong ones as another tool writes them
    // (task_id and response only).
    for (int i = 0; i < 4; ++i) {
      json item = {{"response", {reply(tasks[i], right)}}};
      if (right) {
        item["id"] = "humaneval/" + tasks[i]["task_id"].get<std::string>();
        item["instruction"] = tasks[i]["prompt"];
      } else {
        item["task_id"] = tasks[i]["task_id"];
      }
      doc["data"].push_back(item);
    }
    write_file_atomic(out + "/humaneval.json", doc.dump());
    auto r = test::run_safekey({"eval", "--bench", "humaneval", "--limit", "4", "--out", out,
                                "--data-dir", test::shared_dir() + "/data", "--sandbox-python",
                                python()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::string md = read_file(out + "/report.md");
    EXPECT_NE(
        md.find(right ? "| humaneval | 100.0% | 4 | 0 | 4 |" : "| humaneval | 0.0% | 0 | 0 | 4 |"),
        std::string::npos)
        << md;
    json graded = json::parse(read_file(out + "/humaneval.json"));
    EXPECT_EQ(graded["data"][0]["task_id"], "HumanEval/0");
    EXPECT_EQ(graded["data"][0]["grade"][0]["passed"], right);
  }
}

// Small files in each layout (GPQA CSV, MMLU-Pro JSONL, WildChat CSV, WildJailbreak TSV) under a
// data folder; HumanEval through --bench-file.
std::string make_data_dir(const std::string& root) {
  const std::string d = root + "/data";
  make_dirs(d + "/gpqa");
  make_dirs(d + "/mmlu_pro");
  make_dirs(d + "/wildchat");
  make_dirs(d + "/wildjailbreak");
  write_file_atomic(
      d + "/gpqa/gpqa_diamond.csv",
      "Question,Correct Answer,Incorrect Answer 1,Incorrect Answer 2,Incorrect Answer 3,Record ID\n"
      "What is 1+1?,two,three,four,five,r1\nWhat is 2+2?,4,5,6,7,r2\n");
  write_file_atomic(d + "/mmlu_pro/test.jsonl", json{{"question_id", 1},
                                                     {"question", "Q?"},
                                                     {"options", {"x", "y", "z"}},
                                                     {"answer", "B"},
                                                     {"category", "law"}}
                                                        .dump() +
                                                    "\n");
  write_file_atomic(d + "/wildchat/WildChat.csv",
                    "prompt,category\nwrite something toxic,harassment\n");
  write_file_atomic(d + "/wildjailbreak/eval.tsv",
                    "adversarial\tvanilla\tdata_type\tlabel\nwrapped harmful ask\tharmful "
                    "ask\tadversarial_harmful\t1\n");
  return d;
}

json results(const std::vector<std::pair<std::string, std::string>>& id_resp) {
  json doc = {{"meta_info", json::object()}, {"data", json::array()}};
  for (const auto& [id, resp] : id_resp)
    doc["data"].push_back({{"id", id}, {"instruction", "x"}, {"response", {resp}}});
  return doc;
}

// Catches: a suite that fails on the first missing data file instead of skipping and listing it,
// variants not becoming columns, rows not following the paper's grouping, and the table files
// (md, json, svg) not written.
TEST(SuiteCli, PaperSuiteOverTwoVariantsWritesOneTable) {
  SAFEKEY_REQUIRE_DIR(humaneval_gz());
  auto tasks = humaneval_tasks();
  const std::string root = test::make_temp_dir("suite-cli");
  const std::string data = make_data_dir(root);
  for (const std::string v : {"sft", "safekey"}) {
    const std::string dir = root + "/" + v;
    make_dirs(dir);
    const bool good = v == "safekey";
    write_file_atomic(dir + "/wildchat.json",
                      results({{"wildchat/0", good ? "</think>I can't help with that."
                                                   : "</think>Sure, here it is"}})
                          .dump());
    write_file_atomic(dir + "/wildjailbreak.json",
                      results({{"wildjailbreak/0", "</think>Sure, here it is"}}).dump());
    write_file_atomic(dir + "/mmlu_pro.json",
                      results({{"mmlu_pro/1", good ? "Answer: B" : "Answer: C"}}).dump());
    json he = results({{"humaneval/HumanEval/0", reply(tasks[0], good)}});
    write_file_atomic(dir + "/humaneval.json", he.dump());
    // No gpqa results for "sft": its cell stays empty.
    if (good)
      write_file_atomic(dir + "/gpqa.json",
                        results({{"gpqa/r1", "Answer: A"}, {"gpqa/r2", "Answer: A"}}).dump());
  }
  const std::string out = root + "/cmp";
  auto r = test::run_safekey({"eval", "--suite", "paper", "--data-dir", data, "--bench-file",
                              "humaneval=" + humaneval_gz(), "--limit", "1", "--compare",
                              "sft=" + root + "/sft,safekey=" + root + "/safekey", "--out", out,
                              "--sandbox-python", python(), "--part", "answer"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string md = read_file(out + "/suite.md");
  EXPECT_NE(md.find("| benchmark | sft | safekey |"), std::string::npos) << md;
  EXPECT_NE(md.find("| wildchat | 100.0 | 0.0 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| wildjailbreak | 100.0 | 100.0 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| mmlu_pro | 0.0 | 100.0 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| humaneval | 0.0 | 100.0 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| gpqa | — |"), std::string::npos) << md;
  EXPECT_LT(md.find("Harmfulness rate"), md.find("General ability")) << md;
  EXPECT_NE(
      md.find("- strongreject: not found: " + data + "/strongreject/strongreject_dataset.csv"),
      std::string::npos)
      << md;
  json sj = json::parse(read_file(out + "/suite.json"));
  EXPECT_EQ(sj["variants"], json({"sft", "safekey"}));
  EXPECT_EQ(sj["rows"].size(), 5u);  // wildchat, wildjailbreak, gpqa, humaneval, mmlu_pro
  EXPECT_TRUE(sj["rows"][2]["variants"]["sft"].is_null());
  const std::string svg = read_file(out + "/suite.svg");
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_NE(svg.find(">safekey</text>"), std::string::npos);
  EXPECT_TRUE(path_exists(root + "/safekey/report.md"));
}

// Catches: unknown names and suites accepted silently or reported without the valid names.
TEST(SuiteCli, UnknownNamesAreClearErrors) {
  const std::string out = test::make_temp_dir("suite-cli");
  auto r = test::run_safekey({"eval", "--benches", "humaneval_plus", "--out", out});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("unknown benchmark 'humaneval_plus' (built-in: strongreject, jbb, wildchat"),
            std::string::npos)
      << r.err;
  auto s = test::run_safekey({"eval", "--suite", "everything", "--out", out});
  EXPECT_EQ(s.exit_code, 1);
  EXPECT_NE(s.err.find("unknown suite 'everything' (expected paper, safety or reasoning)"),
            std::string::npos)
      << s.err;
  auto f =
      test::run_safekey({"eval", "--bench-file", "gqpa=x.csv", "--benches", "gpqa", "--out", out});
  EXPECT_EQ(f.exit_code, 1);
  EXPECT_NE(f.err.find("unknown benchmark 'gqpa'"), std::string::npos) << f.err;
  auto j = test::run_safekey({"judge", "--judge", "humaneval", "--results", out + "/none.json",
                              "--sandbox-python", "no-such-python-xyz"});
  EXPECT_EQ(j.exit_code, 1);
  EXPECT_NE(j.err.find("no-such-python-xyz"), std::string::npos) << j.err;
}

}  // namespace
}  // namespace safekey
