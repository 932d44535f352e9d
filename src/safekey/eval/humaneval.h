// HumanEval (Chen et al. 2021, openai/human-eval): the 164 tasks, the completion taken from a
// reply, the test program, its run in the sandbox (sandbox.h), and pass@k by the unbiased
// estimator. docs/evaluation.md, "HumanEval", states every rule.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "safekey/eval/sandbox.h"
#include "safekey/util/json.h"

namespace safekey::eval {

struct HumanEvalTask {
  std::string task_id;             // "HumanEval/0"
  std::string prompt;              // imports, signature and docstring
  std::string entry_point;         // the function `check` is called with
  std::string canonical_solution;  // the body that completes `prompt`
  std::string test;                // defines check(candidate)
  std::string source;              // "file:line"
};

// Reads HumanEval.jsonl(.gz): one task per line with task_id, prompt, entry_point,
// canonical_solution, test. Errors name the file, line and missing field.
std::vector<HumanEvalTask> read_humaneval(const std::string& path);

// The instruction put before the task's prompt for generation (simple-evals' wording).
extern const char* const kHumanEvalInstruction;

// The code in a reply: the answer part (after the last </think>); inside it the first fenced block
// that defines `entry_point`, else the first ```python block, else the first fenced block (an
// unclosed fence runs to the end), else the whole answer.
std::string extract_completion(const std::string& response, const std::string& entry_point);

// The program run for a completion: when the completion defines `entry_point` at top level it
// follows the prompt as a whole new definition (prompt + "\n" + code); otherwise it is the body
// that continues the prompt (a body written without indentation is indented by 4 spaces). Then the
// test, `check(entry_point)`, and a line printing `nonce`, so a program that exits early with
// status 0 does not pass.
std::string humaneval_program(const HumanEvalTask& task, const std::string& completion,
                              const std::string& nonce);

// One response's outcome.
struct CodeGrade {
  bool passed = false;
  std::string status;  // "passed" | "failed" | "timeout" | "no_code" | "sandbox_error"
  std::string detail;  // last line of stderr, the signal, or the sandbox's error
  double wall_s = 0;
  json to_json() const;
};
CodeGrade run_humaneval(const HumanEvalTask& task, const std::string& completion,
                        const SandboxOptions& sandbox);

// Unbiased pass@k for one task with n samples of which c pass: 1 - C(n-c, k) / C(n, k)
// (Chen et al. 2021, eq. 1, in its numerically stable product form). Requires k <= n.
double pass_at_k(int64_t n, int64_t c, int64_t k);

struct CodeGradeOptions {
  SandboxOptions sandbox;
  int jobs = 0;          // programs run at once (0 = number of CPUs)
  bool progress = true;  // a progress line on stderr
};

struct CodeCounts {
  int64_t items = 0, responses = 0, passed = 0, timeouts = 0, no_code = 0, sandbox_errors = 0;
  std::map<int64_t, double> pass_at;  // k -> mean pass@k (%) over items with at least k samples
  std::string isolation;              // SandboxIsolation::describe() of the runs
  json to_json() const;
};

// Grades every response of a results document. An item's task is its `task_id` field, else its
// `id` without a leading "humaneval/". Writes item["grade"] = [CodeGrade...] per response and
// meta_info["humaneval"] = counts; pass@1 is always computed, pass@k for k in {10, 100} when every
// item has at least k responses. Unknown task ids and items without one are errors naming the item.
CodeCounts grade_humaneval(json& doc, const std::vector<HumanEvalTask>& tasks,
                           const CodeGradeOptions& opts, const std::string& where);

}  // namespace safekey::eval
