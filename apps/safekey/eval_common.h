// Flag wiring shared by `safekey judge`, `safekey eval` and `safekey annotate --method judge`:
// the judge client options (endpoint, key, retries, timeout, concurrency, cache folder).
#pragma once
#include <string>

#include "cli.h"
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

}  // namespace safekey
