// Evaluation report: per-benchmark figures from judged / graded results files, written as
// report.md (Markdown table + the rules), report.json and report.svg (a bar chart).
//   harmful benchmarks:     harmfulness rate = harmful / judged (status "ok"), judge rule stated
//   over-refusal (XSTest):  full refusal, partial refusal and full compliance rates over judged;
//                           refusal rate = full + partial
//   MATH-500 / AIME 2024:   accuracy = correct / responses (no extracted answer counts as wrong)
//   GPQA / MMLU-Pro:        accuracy = correct letters / responses, also per category
//   HumanEval:              pass@1 = mean over tasks of passed / samples (humaneval.h)
// Counts always include responses, judged, unparsed and error.
#pragma once
#include <string>
#include <vector>

#include "safekey/eval/benchmarks.h"
#include "safekey/eval/results.h"
#include "safekey/util/json.h"

namespace safekey::eval {

struct BenchReport {
  std::string bench;
  BenchKind kind = BenchKind::kHarmful;
  std::string judge_key;  // "openai-harm:response" (empty for math)
  std::string rule;       // how the headline figure is defined
  int64_t items = 0, responses = 0, judged = 0, unparsed = 0, error = 0;
  int64_t harmful = 0, full_refusal = 0, partial_refusal = 0, full_compliance = 0;
  int64_t correct = 0, no_answer = 0;
  std::string metric;  // "harmfulness_rate" | "refusal_rate" | "accuracy" | "pass@1"
  double value = 0;    // percent, 0..100 (NaN when nothing was judged)
  json categories = json::object();  // choice kinds: category -> {correct, responses, accuracy}
  json to_json() const;
  // The inverse of to_json, for report.json files written by `safekey eval`. Throws an Error naming
  // `where` (e.g. "runs/a/report.json: benchmarks[2]") and the missing or mistyped field.
  static BenchReport from_json(const json& j, const std::string& where);
};

// Math and choice kinds: grades every response (answer part) against item["answer"] and writes
// item["grade"] = [{has_answer, extracted, reference, correct}] per response. (HumanEval runs
// code: grade_humaneval in humaneval.h.)
void grade_results(json& doc, BenchKind kind);

// Figures for one judged (or graded) results document. For judged kinds, `judge_key` picks the
// labels (item["judge"][judge_key]); `rule` comes from meta_info.judges[judge_key].rule.
BenchReport summarize_results(const json& doc, const std::string& bench, BenchKind kind,
                              const std::string& judge_key);

std::string report_markdown(const std::vector<BenchReport>& rows, const json& meta);
json report_json(const std::vector<BenchReport>& rows, const json& meta);
std::string report_bar_chart_svg(const std::vector<BenchReport>& rows);
// The rows of a report.json written by write_report (errors name the file, the row and the field).
std::vector<BenchReport> read_report_json(const std::string& path);
// Writes report.md, report.json and report.svg into `dir`.
void write_report(const std::string& dir, const std::vector<BenchReport>& rows, const json& meta);

}  // namespace safekey::eval
