// HumanEval with real programs in the real sandbox: the 164 canonical solutions pass, and each kind
// of bad or hostile completion is contained and scored as a failure. Data: the shared
// HumanEval.jsonl.gz, read as shipped (gzip). Interpreter: $SAFEKEY_TEST_PYTHON or
// /usr/bin/python3.
#include "safekey/eval/humaneval.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>

#include "safekey/util/file.h"
#include "safekey/util/gzip.h"
#include "support/support.h"

namespace safekey::eval {
namespace {

std::string humaneval_path() { return test::shared_dir() + "/data/humaneval/HumanEval.jsonl.gz"; }

CodeGradeOptions grade_opts() {
  CodeGradeOptions o;
  o.sandbox.python = test::env_or("SAFEKEY_TEST_PYTHON",
                                  path_exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3");
  o.sandbox.timeout_s = 10;
  o.progress = false;
  return o;
}

#define REQUIRE_HUMANEVAL()                                                                    \
  do {                                                                                         \
    SAFEKEY_REQUIRE_DIR(humaneval_path());                                                     \
    if (resolve_executable(grade_opts().sandbox.python).empty()) GTEST_SKIP() << "no python3"; \
  } while (0)

json results_doc(const std::vector<std::pair<std::string, std::string>>& items) {
  json doc = {{"meta_info", json::object()}, {"data", json::array()}};
  for (const auto& [id, resp] : items)
    doc["data"].push_back({{"task_id", id}, {"response", {resp}}});
  return doc;
}

// Catches: a gzip reader that stops after one buffer or misreads the file, and prompt/test
// assembly that breaks any task (a missing newline, the body in the wrong place).
TEST(HumanEval, CanonicalSolutionsPassAll164) {
  REQUIRE_HUMANEVAL();
  auto tasks = read_humaneval(humaneval_path());
  ASSERT_EQ(tasks.size(), 164u);
  EXPECT_EQ(tasks[0].task_id, "HumanEval/0");
  EXPECT_EQ(tasks[163].task_id, "HumanEval/163");
  std::vector<std::pair<std::string, std::string>> items;
  for (const auto& t : tasks) items.push_back({t.task_id, t.canonical_solution});
  json doc = results_doc(items);
  CodeCounts c = grade_humaneval(doc, tasks, grade_opts(), "canonical");
  EXPECT_EQ(c.passed, 164);
  for (const auto& it : doc["data"])
    EXPECT_TRUE(it["grade"][0]["passed"].get<bool>())
        << it["task_id"] << ": " << it["grade"][0].dump();
  EXPECT_DOUBLE_EQ(c.pass_at.at(1), 100.0);
  EXPECT_EQ(doc["meta_info"]["humaneval"]["passed"], 164);
  std::cerr << "sandbox: " << c.isolation << "\n";
}

// Catches: a grader that counts anything that runs as a pass, and a sandbox that lets hostile
// completions through. Every completion is for HumanEval/0 (has_close_elements).
TEST(HumanEval, WrongAndHostileCompletionsAreContainedAndFail) {
  REQUIRE_HUMANEVAL();
  auto tasks = read_humaneval(humaneval_path());
  char tmpl[] = "/tmp/safekey-he-outside-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string outside = tmpl;
  chmod(outside.c_str(), 0777);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"wrong", "    return False\n"},
      {"loop", "    while True:\n        pass\n"},
      {"fork bomb", "    import os\n    while True:\n        os.fork()\n"},
      {"memory bomb", "    x = bytearray(8 << 30)\n    return True\n"},
      {"write outside",
       "    open('" + outside + "/escaped.txt', 'w').write('x')\n    return False\n"},
      {"network",
       "    import socket\n    socket.create_connection(('127.0.0.1', 9), timeout=1)\n"
       "    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + "
       "1:])\n"},
      {"early exit", "    import os\n    os._exit(0)\n"},
      {"empty", ""},
  };
  std::vector<std::pair<std::string, std::string>> items;
  for (const auto& c : cases) items.push_back({"HumanEval/0", c.second});
  json doc = results_doc(items);
  auto o = grade_opts();
  o.sandbox.timeout_s = 3;
  o.sandbox.memory_mb = 512;
  CodeCounts c = grade_humaneval(doc, tasks, o, "hostile");
  const bool escaped = path_exists(outside + "/escaped.txt");
  std::remove((outside + "/escaped.txt").c_str());
  rmdir(outside.c_str());
  EXPECT_EQ(c.passed, 0);
  for (size_t i = 0; i < cases.size(); ++i)
    EXPECT_FALSE(doc["data"][i]["grade"][0]["passed"].get<bool>()) << cases[i].first;
  EXPECT_EQ(doc["data"][1]["grade"][0]["status"], "timeout");
  EXPECT_EQ(doc["data"][7]["grade"][0]["status"], "no_code");
  EXPECT_EQ(doc["data"][6]["grade"][0]["detail"], "exited before the tests finished");
  if (c.isolation.find("ro-fs") != std::string::npos) {
    EXPECT_FALSE(escaped);
  }
}

// Catches: code extraction that ignores </think>, takes the thinking's code, or fails to indent a
// bare body; and program assembly that drops a full redefinition.
TEST(HumanEval, CompletionExtractionAndProgramAssembly) {
  const std::string full =
      "<think>maybe ```python\ndef f(x):\n    return 0\n```</think>\nHere:\n```python\n"
      "import math\n\ndef f(x):\n    return x + 1\n```\nDone.";
  EXPECT_EQ(extract_completion(full, "f"), "import math\n\ndef f(x):\n    return x + 1");
  EXPECT_EQ(extract_completion("</think>\n\n    return x + 1\n", "f"), "    return x + 1");
  EXPECT_EQ(extract_completion("</think>```\nreturn 1\n", "f"), "return 1");  // unclosed fence
  HumanEvalTask t{"T/0",
                  "def f(x):\n    \"\"\"doc\"\"\"\n",
                  "f",
                  "    return x + 1\n",
                  "def check(c):\n    assert c(1) == 2\n",
                  "mem"};
  std::string body = humaneval_program(t, "return x + 1", "NONCE");
  EXPECT_NE(body.find("\"\"\"doc\"\"\"\n    return x + 1\n"), std::string::npos) << body;
  std::string redef = humaneval_program(t, "def f(x):\n    return x + 1", "NONCE");
  EXPECT_NE(redef.find("\"\"\"doc\"\"\"\n\ndef f(x):"), std::string::npos) << redef;
  EXPECT_NE(redef.find("check(f)\n"), std::string::npos);
  EXPECT_NE(redef.find("NONCE"), std::string::npos);
}

// Catches: the biased estimator (c/n) used for k > 1, and k > n silently accepted.
TEST(HumanEval, PassAtKIsTheUnbiasedEstimator) {
  EXPECT_DOUBLE_EQ(pass_at_k(10, 3, 1), 0.3);
  EXPECT_NEAR(pass_at_k(10, 3, 5), 1.0 - 21.0 / 252.0, 1e-12);  // 1 - C(7,5)/C(10,5)
  EXPECT_DOUBLE_EQ(pass_at_k(5, 0, 3), 0.0);
  EXPECT_DOUBLE_EQ(pass_at_k(5, 3, 3), 1.0);  // fewer than k failures: some draw passes
  EXPECT_THROW(pass_at_k(2, 1, 3), Error);
}

// Catches: unknown task ids graded against the wrong task, and truncated gzip read as complete.
TEST(HumanEval, BadInputsAreNamedErrors) {
  REQUIRE_HUMANEVAL();
  auto tasks = read_humaneval(humaneval_path());
  json doc = results_doc({{"HumanEval/999", "    return 1\n"}});
  try {
    grade_humaneval(doc, tasks, grade_opts(), "r.json");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("r.json: data[0]: unknown HumanEval task 'HumanEval/999'"),
              std::string::npos)
        << e.what();
  }
  const std::string dir = test::make_temp_dir("humaneval");
  const std::string packed = read_file(humaneval_path());
  write_file_atomic(dir + "/cut.jsonl.gz", packed.substr(0, packed.size() / 2));
  try {
    read_gzip_file(dir + "/cut.jsonl.gz");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cut.jsonl.gz: not a valid gzip file (truncated)"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace safekey::eval
