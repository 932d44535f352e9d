// `safekey eval`: generate + judge + report over several benchmarks (SPEC.md section 5).
//
//   safekey eval --model DIR --benches strongreject,xstest,math500 --judge refusal-keywords --out ev/
//   safekey eval --model DIR --benches jbb --judge openai-harm --endpoint URL --judge-model gpt-4o --out ev/
//
// For each benchmark: load its prompts (--data-dir, --limit, user files with --prompt-column ...),
// generate with the reference settings unless <out>/<bench>.json already holds the results for
// exactly these prompts (so a rerun only judges and reports; no --model needed then), judge
// (harmful kinds: --judge; over-refusal kinds: --refusal-judge; math kinds: the \boxed{} grader),
// write the labels into <out>/<bench>.json, then report.md / report.json / report.svg in <out>.
#include <cmath>
#include <ctime>
#include <iostream>
#include <memory>

#include "cli.h"
#include "eval_common.h"
#include "model_setup.h"
#include "safekey/eval/benchmarks.h"
#include "safekey/eval/judge_runner.h"
#include "safekey/eval/report.h"
#include "safekey/infer/generator.h"
#include "safekey/infer/prompt.h"
#include "safekey/model/decoder.h"
#include "safekey/tensor/runtime.h"
#include "safekey/text/chat_template.h"
#include "safekey/text/tokenizer.h"
#include "safekey/util/file.h"

namespace safekey {
namespace {

// The model, loaded on first use (not at all when every benchmark already has results).
LoadedModel& model_for(cli::Args& a, std::unique_ptr<LoadedModel>& slot) {
  if (slot) return *slot;
  const std::string dir = a.str("model");
  SK_CHECK(!dir.empty(), "eval: --model is required to generate (results missing in --out)");
  slot = load_for_generation(a, dir, {"eval", "prompts are used as raw text", true, true});
  return *slot;
}

json generate_results(cli::Args& a, LoadedModel& m, const eval::Benchmark& b) {
  const infer::SamplingParams p = sampling_params(a, "eval");
  std::vector<infer::Request> reqs;
  for (const auto& it : b.items) {
    infer::Request r;
    if (m.chat) {
      for (const auto& msg : it.messages) r.messages.push_back({msg.role, msg.content});
    } else {
      r.prompt = it.messages.back().content;
    }
    r.prefill = it.prefill_target;
    r.prefill_tokens = a.i64("prefilling");
    reqs.push_back(std::move(r));
  }
  std::cerr << "eval: generating " << reqs.size() << " responses for " << b.name << "\n";
  std::vector<infer::Completion> out = m.gen->generate(reqs, p);
  json data = json::array();
  for (size_t i = 0; i < b.items.size(); ++i) {
    const auto& it = b.items[i];
    json j = {{"id", it.id}, {"bench", b.name}, {"instruction", it.instruction},
              {"prompt", out[i].prompt}, {"response", json::array({strip_response(out[i].text)})},
              {"finish_reason", out[i].finish_reason}, {"prompt_tokens", out[i].prompt_tokens},
              {"completion_tokens", static_cast<int64_t>(out[i].token_ids.size())}};
    if (!it.category.empty()) j["category"] = it.category;
    if (!it.label.empty()) j["label"] = it.label;
    if (!it.reference_answer.empty()) j["answer"] = it.reference_answer;
    if (!it.prefill_target.empty()) j["target"] = it.prefill_target;
    if (it.messages.size() > 1) {
      j["objective"] = it.instruction;
      json msgs = json::array();
      for (const auto& msg : it.messages) msgs.push_back({{"role", msg.role}, {"content", msg.content}});
      j["messages"] = std::move(msgs);
    }
    data.push_back(std::move(j));
  }
  json settings = a.resolved();
  settings.erase("api-key");  // never store the judge key in results files
  json meta = {{"bench", b.name}, {"kind", eval::bench_kind_name(b.kind)}, {"model_path", a.str("model")},
               {"files", b.files}, {"settings", settings}};
  return {{"meta_info", meta}, {"data", data}};
}

// Existing results match when they hold one item per prompt with the same ids, in order.
bool results_match(const json& doc, const eval::Benchmark& b) {
  const json& d = doc["data"];
  if (d.size() != b.items.size()) return false;
  for (size_t i = 0; i < d.size(); ++i)
    if (d[i].value("id", "") != b.items[i].id) return false;
  return true;
}

std::string refusal_judge_name(cli::Args& a) {
  std::string r = a.str("refusal-judge");
  if (r != "auto") return r;
  return a.str("judge").rfind("openai-", 0) == 0 ? "openai-refusal" : "refusal-keywords";
}

int run_eval(cli::Args& a) {
  runtime::set_threads(static_cast<int>(a.i64("threads")));
  const std::string out = a.required("out");
  make_dirs(out);
  eval::LoadOptions lo;
  lo.data_dir = a.str("data-dir").empty() ? eval::default_data_dir() : a.str("data-dir");
  lo.limit = a.i64("limit");
  lo.columns.prompt = a.str("prompt-column");
  lo.columns.messages = a.str("messages-column");
  lo.columns.id = a.str("id-column");
  lo.columns.category = a.str("category-column");
  lo.columns.label = a.str("label-column");
  lo.columns.objective = a.str("objective-column");
  lo.columns.answer = a.str("answer-column");
  lo.columns.target = a.str("target-column");
  lo.user_kind = eval::bench_kind_from_name(a.str("user-kind"));
  const std::vector<std::string> names = a.list("benches");
  SK_CHECK(!names.empty(), "eval: --benches is empty");

  // Judges are built up front so flag mistakes fail before any generation.
  auto harm_judge = eval::make_judge(a.str("judge"), judge_options(a));
  auto refusal_judge = eval::make_judge(refusal_judge_name(a), judge_options(a));
  eval::JudgeRunOptions jo = judge_run_options(a, path_join(out, "judge-cache"), harm_judge->name());
  eval::JudgeRunOptions ro = judge_run_options(a, path_join(out, "judge-cache"), refusal_judge->name());

  std::vector<eval::Benchmark> benches;
  for (const auto& n : names) benches.push_back(eval::load_benchmark(n, lo));

  std::unique_ptr<LoadedModel> model;
  std::vector<eval::BenchReport> rows;
  for (const auto& b : benches) {
    const std::string path = path_join(out, b.name + ".json");
    json doc;
    bool have = false;
    if (path_exists(path)) {
      doc = eval::read_results(path);
      have = results_match(doc, b);
      if (!have) std::cerr << "eval: " << path << " does not match the prompts; generating again\n";
      else std::cerr << "eval: reusing " << path << "\n";
      // Results from `safekey generate` or older runs may lack the reference answers the graders
      // need: take them from the benchmark (the ids matched, so the order is the same).
      if (have)
        for (size_t i = 0; i < b.items.size(); ++i)
          if (!doc["data"][i].contains("answer") && !b.items[i].reference_answer.empty())
            doc["data"][i]["answer"] = b.items[i].reference_answer;
    }
    if (!have) {
      doc = generate_results(a, model_for(a, model), b);
      eval::write_results(path, doc);
    }
    std::string key;
    if (b.kind == eval::BenchKind::kMath || b.kind == eval::BenchKind::kAime) {
      eval::grade_results(doc, b.kind);
    } else {
      const bool harmful = b.kind == eval::BenchKind::kHarmful;
      const eval::Judge& j = harmful ? *harm_judge : *refusal_judge;
      const eval::JudgeRunOptions& o = harmful ? jo : ro;
      eval::run_judge(doc, j, o);
      key = eval::label_key(j.name(), o.part);
    }
    eval::write_results(path, doc);
    rows.push_back(eval::summarize_results(doc, b.name, b.kind, key));
    const auto& r = rows.back();
    std::cerr << "eval: " << b.name << ": " << r.metric << " "
              << (std::isnan(r.value) ? std::string("n/a") : std::to_string(r.value) + "%") << "\n";
  }
  char date[32];
  std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  json meta = {{"model", a.str("model")}, {"judge", harm_judge->name()},
               {"refusal judge", refusal_judge->name()}, {"part", eval::part_name(jo.part)},
               {"refusal judge part", eval::part_name(ro.part)},
               {"date", date}};
  if (!harm_judge->model().empty()) {
    meta["judge model"] = harm_judge->model();
    meta["endpoint"] = jo.client.endpoint;
  }
  eval::write_report(out, rows, meta);
  std::cout << eval::report_markdown(rows, meta) << "\nwrote " << path_join(out, "report.md") << ", report.json, report.svg\n";
  return 0;
}

cli::Registrar reg({"eval", "generate + judge + report over benchmarks (harmfulness, over-refusal, math accuracy)",
                    "safekey eval --model DIR --benches strongreject,xstest,math500 --judge refusal-keywords --out ev/\n"
                    "Results already in <out>/<bench>.json for the same prompts are reused (judge + report only).\n"
                    "docs/evaluation.md: benchmarks, judges, metric rules, report files.",
                    run_eval});

}  // namespace
}  // namespace safekey
