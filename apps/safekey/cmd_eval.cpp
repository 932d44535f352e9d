// `safekey eval`: generate + judge + report over several benchmarks (SPEC.md section 5).
//
//   safekey eval --model DIR --benches strongreject,xstest,math500 --judge refusal-keywords --out ev/
//   safekey eval --model DIR --benches jbb --judge openai-harm --endpoint URL --judge-model gpt-4o --out ev/
//
// For each benchmark: load its prompts (--data-dir, --limit, user files with --prompt-column ...),
// generate with the reference settings unless <out>/<bench>.json already holds the results for
// exactly these prompts (so a rerun only judges and reports; no --model needed then), judge
// (harmful kinds: --judge; over-refusal kinds: --refusal-judge) or grade (math: the \boxed{}
// grader; GPQA / MMLU-Pro: the answer letter; HumanEval: the code run in the sandbox, --sandbox-*),
// write the labels into <out>/<bench>.json, then report.md / report.json / report.svg in <out>.
// --suite paper|safety|reasoning runs every benchmark of the suite whose data file is found (the
// others are listed as skipped) and adds suite.md / suite.json / suite.svg; --compare NAME=DIR,...
// evaluates existing results folders (one column each) into one such table without generating.
#include <algorithm>
#include <cmath>
#include <ctime>
#include <iostream>
#include <memory>
#include <optional>

#include "cli.h"
#include "eval_common.h"
#include "model_setup.h"
#include "safekey/eval/benchmarks.h"
#include "safekey/eval/endpoint_generation.h"
#include "safekey/eval/judge_runner.h"
#include "safekey/eval/report.h"
#include "safekey/eval/suite.h"
#include "safekey/infer/generator.h"
#include "safekey/infer/prompt.h"
#include "safekey/model/decoder.h"
#include "safekey/serve/openai.h"
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

// One generated completion, whichever way it was made.
struct Generated {
  std::string text, finish_reason, prompt;
  int64_t prompt_tokens = 0, completion_tokens = 0;
  json guard;  // with --guard
};

// The generation request of a benchmark item, for local generation and for rendering a prefilling
// item sent through an endpoint alike: the conversation for the chat template (without one, the last
// message as a raw prompt), then the prefilling target cut to `prefill_tokens` tokens.
infer::Request request_of(const eval::BenchItem& it, bool chat, int64_t prefill_tokens) {
  infer::Request r;
  if (chat) {
    for (const auto& msg : it.messages) r.messages.push_back({msg.role, msg.content});
  } else {
    r.prompt = it.messages.back().content;
  }
  r.prefill = it.prefill_target;
  r.prefill_tokens = prefill_tokens;
  return r;
}

std::vector<Generated> generate_locally(cli::Args& a, LoadedModel& m, const eval::Benchmark& b) {
  const infer::SamplingParams p = sampling_params(a, "eval");
  std::vector<infer::Request> reqs;
  for (const auto& it : b.items) reqs.push_back(request_of(it, m.chat != nullptr, a.i64("prefilling")));
  std::cerr << "eval: generating " << reqs.size() << " responses for " << b.name << "\n";
  std::vector<Generated> out;
  for (auto& c : m.gen->generate(reqs, p))
    out.push_back({c.text, c.finish_reason, c.prompt, c.prompt_tokens, static_cast<int64_t>(c.token_ids.size()),
                   a.str("guard").empty() ? json() : serve::guard_json(c.guard)});
  return out;
}

// --generate-endpoint: the same prompts through an OpenAI-compatible server (the server renders
// the chat template, so the results' `prompt` is empty; prefilling items are rendered here with
// --generate-tokenizer and their `prompt` is what was sent).
std::vector<Generated> generate_remotely(cli::Args& a, const eval::Benchmark& b) {
  const infer::SamplingParams p = sampling_params(a, "eval");
  eval::EndpointGenerationOptions o;
  o.client.endpoint = a.str("generate-endpoint");
  o.client.api_key = a.str("generate-api-key");
  o.client.max_retries = static_cast<int>(a.i64("retries"));
  o.client.read_timeout_s = static_cast<int>(a.i64("generate-timeout"));
  o.model = a.str("generate-model");
  o.concurrency = static_cast<int>(a.i64("generate-concurrency"));
  SK_CHECK(o.concurrency >= 1, "--generate-concurrency must be >= 1");
  o.temperature = p.temperature;
  o.top_p = p.top_p;
  o.top_k = p.top_k;
  o.repetition_penalty = p.repetition_penalty;
  o.max_tokens = p.max_new_tokens;
  o.seed = a.given("seed") ? a.i64("seed") : -1;
  o.stop = p.stop;
  // Prefilling items: rendered here with the served model's tokenizer and template, exactly as
  // generate_locally renders them, and sent as raw prompts.
  std::unique_ptr<text::Tokenizer> tok;
  std::unique_ptr<text::ChatFormat> chat;
  const std::string tok_dir = a.str("generate-tokenizer");
  const bool has_prefill = std::any_of(b.items.begin(), b.items.end(),
                                       [](const eval::BenchItem& it) { return !it.prefill_target.empty(); });
  if (!tok_dir.empty() && has_prefill) {
    tok = std::make_unique<text::Tokenizer>(text::Tokenizer::from_file(tok_dir));
    try {
      chat = std::make_unique<text::ChatFormat>(text::ChatFormat::from_path(tok_dir));
    } catch (const Error& e) {
      std::cerr << "eval: --generate-tokenizer " << tok_dir << " has no chat template (" << e.what()
                << "); prefilling prompts are the raw last user message\n";
    }
    const int64_t prefill_tokens = a.i64("prefilling");
    o.render = [&tok, &chat, prefill_tokens](const eval::BenchItem& it) {
      return infer::render_prompt(request_of(it, chat != nullptr, prefill_tokens), *tok, chat.get());
    };
  }
  std::cerr << "eval: generating " << b.items.size() << " responses for " << b.name << " through "
            << o.client.endpoint << "\n";
  std::vector<Generated> out;
  for (auto& c : eval::generate_via_endpoint(b.items, o))
    out.push_back({c.text, c.finish_reason, c.prompt, c.prompt_tokens, c.completion_tokens, json()});
  return out;
}

json generate_results(cli::Args& a, std::unique_ptr<LoadedModel>& model, const eval::Benchmark& b) {
  const bool remote = !a.str("generate-endpoint").empty();
  const std::vector<Generated> out = remote ? generate_remotely(a, b) : generate_locally(a, model_for(a, model), b);
  json data = json::array();
  for (size_t i = 0; i < b.items.size(); ++i) {
    const auto& it = b.items[i];
    json j = {{"id", it.id}, {"bench", b.name}, {"instruction", it.instruction},
              {"prompt", out[i].prompt}, {"response", json::array({strip_response(out[i].text)})},
              {"finish_reason", out[i].finish_reason}, {"prompt_tokens", out[i].prompt_tokens},
              {"completion_tokens", out[i].completion_tokens}};
    if (!out[i].guard.is_null()) j["guard"] = out[i].guard;
    if (!it.category.empty()) j["category"] = it.category;
    if (!it.label.empty()) j["label"] = it.label;
    if (b.kind == eval::BenchKind::kCode) {
      j["task_id"] = it.reference_answer;
    } else if (!it.reference_answer.empty()) {
      j["answer"] = it.reference_answer;
    }
    if (it.n_options > 0) j["n_options"] = it.n_options;
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
  settings.erase("api-key");  // never store keys in results files
  settings.erase("generate-api-key");
  json meta = {{"bench", b.name}, {"kind", eval::bench_kind_name(b.kind)},
               {"model_path", remote ? a.str("generate-model") : a.str("model")},
               {"files", b.files}, {"settings", settings}};
  return {{"meta_info", meta}, {"data", data}};
}

// Existing results match when they hold one item per prompt with the same ids, in order
// (HumanEval: the same `task_id`s will do, as other tools write them).
bool results_match(const json& doc, const eval::Benchmark& b) {
  const json& d = doc["data"];
  if (d.size() != b.items.size()) return false;
  for (size_t i = 0; i < d.size(); ++i) {
    if (d[i].value("id", "") == b.items[i].id) continue;
    if (b.kind == eval::BenchKind::kCode && d[i].value("task_id", "") == b.items[i].reference_answer) continue;
    return false;
  }
  return true;
}

std::string refusal_judge_name(cli::Args& a) {
  std::string r = a.str("refusal-judge");
  if (r != "auto") return r;
  return a.str("judge").rfind("openai-", 0) == 0 ? "openai-refusal" : "refusal-keywords";
}

// What every evaluated folder shares: the judges and the sandbox settings (built once, so flag
// mistakes fail before any generation) and the model (loaded on first use).
struct EvalContext {
  cli::Args& a;
  std::unique_ptr<eval::Judge> harm_judge, refusal_judge;
  eval::JudgeRunOptions jo, ro;
  std::optional<eval::CodeGradeOptions> code;
  std::unique_ptr<LoadedModel> model;
};

// Generates (when allowed and missing), judges or grades each benchmark in `out` and returns one
// row per benchmark; a benchmark without results where generation is not allowed is listed in
// `missing` instead.
std::vector<eval::BenchReport> eval_folder(EvalContext& ctx, const std::string& out,
                                           const std::vector<eval::Benchmark>& benches, bool allow_generate,
                                           std::vector<std::string>* missing) {
  cli::Args& a = ctx.a;
  std::vector<eval::BenchReport> rows;
  for (const auto& b : benches) {
    const std::string path = path_join(out, b.name + ".json");
    json doc;
    bool have = false;
    if (path_exists(path)) {
      doc = eval::read_results(path, /*need_instruction=*/b.kind != eval::BenchKind::kCode);
      have = results_match(doc, b);
      if (!have) std::cerr << "eval: " << path << " does not match the prompts" << (allow_generate ? "; generating again\n" : "\n");
      else std::cerr << "eval: reusing " << path << "\n";
      // Results from `safekey generate` or older runs may lack the reference answers the graders
      // need: take them from the benchmark (the ids matched, so the order is the same).
      if (have)
        for (size_t i = 0; i < b.items.size(); ++i) {
          json& item = doc["data"][i];
          const auto& bi = b.items[i];
          const char* key = b.kind == eval::BenchKind::kCode ? "task_id" : "answer";
          if (!item.contains(key) && !bi.reference_answer.empty()) item[key] = bi.reference_answer;
          if (!item.contains("n_options") && bi.n_options > 0) item["n_options"] = bi.n_options;
        }
    }
    if (!have && !allow_generate) {
      if (missing) missing->push_back(b.name);
      continue;
    }
    if (!have) {
      doc = generate_results(a, ctx.model, b);
      eval::write_results(path, doc);
    }
    std::string key;
    if (b.kind == eval::BenchKind::kCode) {
      eval::grade_humaneval(doc, eval::read_humaneval(b.files.at(0)), *ctx.code, path);
    } else if (eval::bench_kind_is_graded(b.kind)) {
      eval::grade_results(doc, b.kind);
    } else {
      const bool harmful = b.kind == eval::BenchKind::kHarmful;
      const eval::Judge& j = harmful ? *ctx.harm_judge : *ctx.refusal_judge;
      eval::JudgeRunOptions o = harmful ? ctx.jo : ctx.ro;
      if (!a.on("no-cache") && a.str("cache-dir").empty()) o.cache_dir = path_join(out, "judge-cache");
      eval::run_judge(doc, j, o);
      key = eval::label_key(j.name(), o.part);
    }
    eval::write_results(path, doc);
    rows.push_back(eval::summarize_results(doc, b.name, b.kind, key));
    const auto& r = rows.back();
    std::cerr << "eval: " << b.name << ": " << r.metric << " "
              << (std::isnan(r.value) ? std::string("n/a") : std::to_string(r.value) + "%") << "\n";
  }
  return rows;
}

// --compare NAME=DIR,...: the variants (column name, results folder).
std::vector<std::pair<std::string, std::string>> compare_variants(const cli::Args& a) {
  std::vector<std::pair<std::string, std::string>> v;
  for (const auto& kv : a.list("compare")) {
    size_t eq = kv.find('=');
    SK_CHECK(eq != std::string::npos && eq > 0 && eq + 1 < kv.size(), "--compare: expected NAME=DIR, got '", kv, "'");
    v.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    SK_CHECK(is_directory(v.back().second), "--compare: ", v.back().first, ": no results folder ", v.back().second);
  }
  return v;
}

int run_eval(cli::Args& a) {
  SK_CHECK(a.str("generate-endpoint").empty() || a.str("guard").empty(), "eval: --guard runs inside the model that "
           "generates; with --generate-endpoint give --guard to `safekey serve` instead");
  runtime::set_threads(static_cast<int>(a.i64("threads")));
  const std::string out = a.required("out");
  make_dirs(out);
  eval::LoadOptions lo;
  lo.data_dir = data_dir_of(a);
  lo.files = bench_file_overrides(a);
  lo.limit = a.i64("limit");
  lo.shuffle_seed = a.i64("shuffle-seed");
  lo.reference_subset = a.on("reference-subsets");
  lo.columns.prompt = a.str("prompt-column");
  lo.columns.messages = a.str("messages-column");
  lo.columns.id = a.str("id-column");
  lo.columns.category = a.str("category-column");
  lo.columns.label = a.str("label-column");
  lo.columns.objective = a.str("objective-column");
  lo.columns.answer = a.str("answer-column");
  lo.columns.target = a.str("target-column");
  lo.user_kind = eval::bench_kind_from_name(a.str("user-kind"));
  const std::string suite = a.str("suite");
  SK_CHECK(suite.empty() || !a.given("benches"), "eval: give --suite or --benches, not both");
  const std::vector<std::string> names = suite.empty() ? a.list("benches") : eval::suite_benchmarks(suite);
  SK_CHECK(!names.empty(), "eval: --benches is empty");
  const auto variants = compare_variants(a);

  EvalContext ctx{a, eval::make_judge(a.str("judge"), judge_options(a)),
                  eval::make_judge(refusal_judge_name(a), judge_options(a)), {}, {}, std::nullopt, nullptr};
  ctx.jo = judge_run_options(a, path_join(out, "judge-cache"), ctx.harm_judge->name());
  ctx.ro = judge_run_options(a, path_join(out, "judge-cache"), ctx.refusal_judge->name());

  // A suite runs what it finds: benchmarks whose data file is missing are skipped and listed.
  eval::SuiteTable table;
  std::vector<eval::Benchmark> benches;
  for (const auto& n : names) {
    if (!suite.empty()) {
      const std::string f = eval::benchmark_file(n, lo);
      if (!path_exists(f)) {
        table.skipped.push_back({n, "not found: " + f});
        std::cerr << "eval: suite " << suite << ": skipping " << n << " (no " << f << ")\n";
        continue;
      }
    }
    benches.push_back(eval::load_benchmark(n, lo));
  }
  SK_CHECK(!benches.empty(), "eval: suite ", suite, ": no benchmark data found under ", lo.data_dir,
           " (set --data-dir or --bench-file NAME=PATH)");
  // The sandbox flags are checked (interpreter found) only when a code benchmark is asked for.
  for (const auto& b : benches)
    if (b.kind == eval::BenchKind::kCode && !ctx.code) ctx.code = code_grade_options(a);

  char date[32];
  std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  json meta = {{"model", a.str("model")}, {"judge", ctx.harm_judge->name()},
               {"refusal judge", ctx.refusal_judge->name()}, {"part", eval::part_name(ctx.jo.part)},
               {"refusal judge part", eval::part_name(ctx.ro.part)},
               {"date", date}};
  if (!ctx.harm_judge->model().empty()) {
    meta["judge model"] = ctx.harm_judge->model();
    meta["endpoint"] = ctx.jo.client.endpoint;
  }
  if (ctx.code) meta["sandbox python"] = ctx.code->sandbox.python;

  table.suite = suite.empty() ? "custom" : suite;
  for (const auto& b : benches) {
    table.benches.push_back(b.name);
    table.kinds.push_back(b.kind);
  }
  table.cells.assign(benches.size(), {});
  auto add_column = [&](const std::string& name, const std::vector<eval::BenchReport>& rows) {
    table.variants.push_back(name);
    for (size_t r = 0; r < benches.size(); ++r) {
      eval::SuiteCell cell;
      for (const auto& row : rows)
        if (row.bench == benches[r].name) cell = {true, row};
      table.cells[r].push_back(cell);
    }
  };
  if (variants.empty()) {
    std::vector<eval::BenchReport> rows = eval_folder(ctx, out, benches, true, nullptr);
    eval::write_report(out, rows, meta);
    std::cout << eval::report_markdown(rows, meta) << "\nwrote " << path_join(out, "report.md")
              << ", report.json, report.svg\n";
    if (suite.empty()) return 0;
    std::string name = a.str("model").empty() ? "model" : a.str("model");
    while (name.size() > 1 && name.back() == '/') name.pop_back();
    add_column(name.substr(name.find_last_of('/') + 1), rows);
  } else {
    // Variants: each folder holds its own results (from earlier `eval` runs); they are judged or
    // graded in place, and nothing is generated.
    meta.erase("model");
    for (const auto& [name, dir] : variants) {
      std::vector<std::string> missing;
      std::vector<eval::BenchReport> rows = eval_folder(ctx, dir, benches, false, &missing);
      eval::write_report(dir, rows, meta);
      for (const auto& m : missing)
        std::cerr << "eval: " << name << ": no results for " << m << " in " << dir << "\n";
      add_column(name, rows);
      meta["variant " + name] = dir;
    }
  }
  eval::write_suite(out, table, meta);
  std::cout << eval::suite_markdown(table, meta) << "\nwrote " << path_join(out, "suite.md")
            << ", suite.json, suite.svg\n";
  return 0;
}

cli::Registrar reg({"eval", "generate + judge + report over benchmarks (harmfulness, over-refusal, accuracy, pass@1)",
                    "safekey eval --model DIR --benches strongreject,xstest,math500 --judge refusal-keywords --out ev/\n"
                    "safekey eval --model DIR --suite paper --data-dir DATA --out ev/   (every benchmark found)\n"
                    "safekey eval --suite paper --compare sft=ev_sft,safekey=ev_sk --out cmp/   (one table)\n"
                    "Results already in <out>/<bench>.json for the same prompts are reused (judge + report only).\n"
                    "docs/evaluation.md: benchmarks, judges, metric rules, report files.",
                    run_eval});

}  // namespace
}  // namespace safekey
