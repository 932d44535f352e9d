// `safekey judge`: label every response of a results file with a judge and write the labels back
// into the file (docs/evaluation.md: judges, label fields, cache, failure handling).
#include <iostream>

#include "cli.h"
#include "eval_common.h"
#include "safekey/eval/judge_runner.h"

namespace safekey {
namespace {

int run_judge(cli::Args& args) {
  const std::string path = args.required("results");
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
                    "(XSTest classes), llama-guard. Replies are cached in <results>.judge-cache/.",
                    run_judge});

}  // namespace
}  // namespace safekey
