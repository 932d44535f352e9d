// `safekey judge`: label every response of a results file with a judge and write the labels back
// into the file (docs/evaluation.md: judges, label fields, cache, failure handling).
#include <cstdio>
#include <iostream>

#include "cli.h"
#include "eval_common.h"
#include "safekey/eval/judge_runner.h"

namespace safekey {
namespace {

// --judge humaneval: runs each response's code against its task's tests in the sandbox.
int run_humaneval_judge(cli::Args& args, const std::string& path) {
  const eval::CodeGradeOptions opts = code_grade_options(args);
  eval::LoadOptions lo;
  lo.data_dir = data_dir_of(args);
  lo.files = bench_file_overrides(args);
  const eval::Benchmark b = eval::load_benchmark("humaneval", lo);
  const auto tasks = eval::read_humaneval(b.files.at(0));
  json doc = eval::read_results(path, /*need_instruction=*/false);
  eval::CodeCounts c = eval::grade_humaneval(doc, tasks, opts, path);
  eval::write_results(path, doc);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f%%", c.pass_at.count(1) ? c.pass_at.at(1) : 0.0);
  std::cout << "judge humaneval: " << c.items << " tasks, " << c.responses << " responses, " << c.passed
            << " passed, " << c.timeouts << " timed out, " << c.no_code << " without code; pass@1 " << buf;
  for (const auto& [k, v] : c.pass_at)
    if (k > 1) std::cout << ", pass@" << k << " " << v << "%";
  std::cout << "\nsandbox: " << c.isolation << "\nwrote grades to " << path << " under grade\n";
  return c.sandbox_errors > 0 ? 1 : 0;
}

int run_judge(cli::Args& args) {
  const std::string path = args.required("results");
  if (args.str("judge") == "humaneval") return run_humaneval_judge(args, path);
  auto judge = eval::make_judge(args.str("judge"), judge_options(args));
  eval::JudgeRunOptions opts = judge_run_options(args, path + ".judge-cache", judge->name());
  json doc = eval::read_results(path);
  eval::JudgeCounts c = eval::run_judge(doc, *judge, opts);
  eval::write_results(path, doc);
  std::cout << "judge " << judge->name() << " (" << eval::part_name(opts.part) << "): " << c.total
            << " responses, " << c.ok << " judged, " << c.unparsed << " unparsed, " << c.error
            << " errors; harmful " << c.harmful << ", refused " << c.refused << " (full "
            << c.full_refusal << ", partial " << c.partial_refusal << "); " << c.requests
            << " requests, " << c.cached << " from cache\n"
            << "rule: " << judge->harmful_rule() << "\nwrote labels to " << path << " under judge."
            << eval::label_key(judge->name(), opts.part) << "\n";
  return 0;
}

cli::Registrar reg({"judge", "label the responses of a results file with a judge (written back into the file)",
                    "safekey judge --results out/strongreject.json --judge refusal-keywords\n"
                    "safekey judge --results r.json --judge openai-harm --endpoint https://api.openai.com/v1 "
                    "--judge-model gpt-4o   (key from OPENAI_API_KEY)\n"
                    "Judges: refusal-keywords (offline), openai-harm (1-5, harmful = 5), openai-refusal\n"
                    "(XSTest classes), llama-guard. Replies are cached in <results>.judge-cache/.\n"
                    "safekey judge --results r.jsonl --judge humaneval   (items with task_id + response;\n"
                    "runs the code in a sandbox, writes grade + pass@1; --sandbox-python, --sandbox-timeout)",
                    run_judge});

}  // namespace
}  // namespace safekey
