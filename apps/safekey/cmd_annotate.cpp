// `safekey annotate`: add summary_end_idx / next_sentence_end_idx (U / K spans, SPEC.md section 2)
// to records that lack them. The work is in src/safekey/data/annotate*.{h,cpp}; this file wires
// flags to it and prints the statistics.
#include <iostream>

#include "cli.h"
#include "safekey/data/annotate_file.h"
#include "eval_common.h"
#include "safekey/eval/annotate_judge.h"
#include "safekey/util/file.h"

namespace safekey {
namespace {

int run_annotate(cli::Args& args) {
  data::AnnotateFileOptions opt;
  opt.load.benign_sources = args.list("benign-sources");
  opt.load.skip_invalid = args.on("skip-invalid");
  opt.load.invalid_list_path = args.str("invalid-list");
  opt.overwrite = args.on("overwrite");
  opt.report_path = args.str("report");
  data::RuleOptions rules;
  rules.max_u_sentences = static_cast<int>(args.i64("max-u-sentences"));
  SK_CHECK(rules.max_u_sentences >= 1, "--max-u-sentences must be at least 1");
  const std::string in = args.required("data"), out = args.required("out");
  std::unique_ptr<data::SpanAnnotator> annotator;
  eval::JudgeAnnotator* judge = nullptr;  // --method judge (src/safekey/eval/annotate_judge.h)
  if (args.str("method") == "judge") {
    eval::JudgeAnnotatorOptions jo;
    jo.client = judge_client_options(args);
    jo.model = args.str("judge-model");
    jo.concurrency = static_cast<int>(args.i64("concurrency"));
    jo.cache_dir = args.on("no-cache") ? "" : (args.given("cache-dir") ? args.str("cache-dir") : out + ".judge-cache");
    jo.rules = rules;
    auto j = std::make_unique<eval::JudgeAnnotator>(jo);
    judge = j.get();
    annotator = std::move(j);
  } else {
    annotator = data::make_span_annotator(args.str("method"), rules);
  }
  const json report = data::annotate_file(in, out, *annotator, opt);
  std::cout << data::annotate_summary_text(report);
  if (judge) {
    json ag = judge->agreement();
    std::cout << "judge vs rules: " << ag["judged"] << " judged, fallback " << ag["fallback"].dump()
              << ", agreement on U length " << ag["agree"] << "/" << ag["compared"]
              << ", mean |diff| " << ag["mean_abs_diff_sentences"] << " sentences\n";
    if (!opt.report_path.empty()) {
      json r = read_json_file(opt.report_path);
      r["judge_agreement"] = ag;
      write_file_atomic(opt.report_path, r.dump(2) + "\n");
    }
  }
  std::cout << "wrote " << out << (opt.report_path.empty() ? "" : " and " + opt.report_path) << "\n";
  return 0;
}

cli::Registrar reg({"annotate", "add U / K span offsets (summary_end_idx, next_sentence_end_idx) to records",
                    "safekey annotate --data STAR-1.json --out star1_spans.json [--report report.json]\n"
                    "Rule-based: U = the opening restatement of the request, K = the next sentence\n"
                    "(docs/data.md lists the rules and flags). Records that already have offsets are\n"
                    "kept unless --overwrite. --method judge asks an OpenAI-compatible model (--endpoint,\n"
                    "--judge-model) where U ends, falls back to the rules, and reports agreement.",
                    run_annotate});

}  // namespace
}  // namespace safekey
