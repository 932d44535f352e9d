// Flag wiring shared by `safekey judge`, `safekey eval` and `safekey annotate --method judge`:
// the judge client options (endpoint, key, retries, timeout, concurrency, cache folder).
#pragma once
#include <map>
#include <string>

#include "cli.h"
#include "safekey/eval/benchmarks.h"
#include "safekey/eval/humaneval.h"
#include "safekey/eval/judge_runner.h"

namespace safekey {

inline net::ChatClientOptions judge_client_options(const cli::Args& args) {
  net::ChatClientOptions c;
  c.endpoint = args.str("endpoint");
  c.api_key = args.str("api-key");
  c.max_retries = static_cast<int>(args.i64("retries"));
  SK_CHECK(c.max_retries >= 0, "--retries must be >= 0");
  c.read_timeout_s = static_cast<int>(args.i64("judge-timeout"));
  SK_CHECK(c.read_timeout_s > 0, "--judge-timeout must be > 0");
  return c;
}

// --part auto: the keyword judge reads the answer (text after </think>), model judges the whole
// response as the reference does.
inline eval::Part judge_part(const cli::Args& args, const std::string& judge_name) {
  const std::string p = args.str("part");
  if (p == "auto") return judge_name == "refusal-keywords" ? eval::Part::kAnswer : eval::Part::kResponse;
  return eval::part_from_name(p);
}

inline eval::JudgeRunOptions judge_run_options(const cli::Args& args, const std::string& default_cache,
                                               const std::string& judge_name) {
  eval::JudgeRunOptions o;
  o.part = judge_part(args, judge_name);
  o.concurrency = static_cast<int>(args.i64("concurrency"));
  SK_CHECK(o.concurrency >= 1, "--concurrency must be >= 1");
  o.client = judge_client_options(args);
  o.cache_dir = args.on("no-cache") ? "" : (args.str("cache-dir").empty() ? default_cache : args.str("cache-dir"));
  return o;
}

inline eval::JudgeOptions judge_options(const cli::Args& args) {
  eval::JudgeOptions j;
  j.model = args.str("judge-model");
  j.harm_threshold = static_cast<int>(args.i64("harm-threshold"));
  return j;
}

// --bench-file NAME=PATH,...: each NAME must be a built-in benchmark.
inline std::map<std::string, std::string> bench_file_overrides(const cli::Args& args) {
  std::map<std::string, std::string> files;
  for (const auto& kv : args.list("bench-file")) {
    size_t eq = kv.find('=');
    SK_CHECK(eq != std::string::npos && eq > 0 && eq + 1 < kv.size(), "--bench-file: expected NAME=PATH, got '",
             kv, "'");
    const std::string name = kv.substr(0, eq);
    eval::builtin_kind(name);  // throws, listing the built-in names, when unknown
    files[name] = kv.substr(eq + 1);
  }
  return files;
}

inline std::string data_dir_of(const cli::Args& args) {
  return args.str("data-dir").empty() ? eval::default_data_dir() : args.str("data-dir");
}

// The HumanEval sandbox and grading flags (--sandbox-*).
inline eval::CodeGradeOptions code_grade_options(const cli::Args& args) {
  eval::CodeGradeOptions o;
  o.sandbox.python = args.str("sandbox-python");
  o.sandbox.timeout_s = args.f64("sandbox-timeout");
  SK_CHECK(o.sandbox.timeout_s > 0, "--sandbox-timeout must be > 0");
  o.sandbox.memory_mb = args.i64("sandbox-memory-mb");
  SK_CHECK(o.sandbox.memory_mb >= 64, "--sandbox-memory-mb must be >= 64");
  o.jobs = static_cast<int>(args.i64("sandbox-jobs"));
  SK_CHECK(o.jobs >= 0, "--sandbox-jobs must be >= 0");
  SK_CHECK(!eval::resolve_executable(o.sandbox.python).empty(), "--sandbox-python: interpreter '",
           o.sandbox.python, "' not found (HumanEval runs the completions with it)");
  return o;
}

}  // namespace safekey
