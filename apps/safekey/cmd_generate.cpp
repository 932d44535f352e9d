// `safekey generate`: responses for a benchmark or a prompt file, in the reference's results layout
// (gen.py: {meta_info, data: [{instruction, prompt, response: [...]}]}), with the reference's settings
// as defaults (greedy, repetition penalty 1.2, 8000 new tokens, prefilling 20 target tokens).
//
//   safekey generate --model DIR --bench strongreject --out results/strongreject.json
//   safekey generate --model DIR --prompts prompts.jsonl --out out.json --max-new-tokens 256
//
// Features and their flags: --bench / --prompts (input), --limit, sampling (--temperature --top-p
// --top-k --repetition-penalty --seed --stop --max-new-tokens), --prefilling N, --batch-size,
// --max-context / --truncate-prompt (context policy), --add-special-tokens, --dtype.
// Resuming: every finished item is appended to OUT's .jsonl at once; a rerun with the same flags
// skips those items (--overwrite starts over). docs/generation.md has the details.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>

#include "cli.h"
#include "model_setup.h"
#include "safekey/eval/benchmarks.h"
#include "safekey/infer/generator.h"
#include "safekey/infer/prompt.h"
#include "safekey/infer/prompt_file.h"
#include "safekey/model/decoder.h"
#include "safekey/serve/openai.h"
#include "safekey/tensor/runtime.h"
#include "safekey/text/chat_template.h"
#include "safekey/text/tokenizer.h"
#include "safekey/util/error.h"
#include "safekey/util/file.h"

namespace safekey {
namespace {

std::vector<infer::PromptItem> load_items(cli::Args& a) {
  bool has_prompts = !a.str("prompts").empty(), has_bench = !a.str("bench").empty();
  SK_CHECK(has_prompts != has_bench, "generate: give exactly one of --prompts FILE or --bench NAME");
  std::vector<infer::PromptItem> items;
  if (has_prompts) {
    items = infer::read_prompt_file(a.str("prompts"));
  } else {
    eval::LoadOptions lo;
    lo.data_dir = a.str("data-dir").empty() ? eval::default_data_dir() : a.str("data-dir");
    lo.limit = a.i64("limit");
    lo.shuffle_seed = a.i64("shuffle-seed");
    lo.reference_subset = a.on("reference-subsets");
    eval::Benchmark b = eval::load_benchmark(a.str("bench"), lo);
    for (const auto& bi : b.items) {
      infer::PromptItem it;
      it.id = bi.id;
      it.instruction = bi.instruction;
      for (const auto& m : bi.messages) it.messages.push_back({m.role, m.content});
      it.target = bi.prefill_target;
      it.category = bi.category;
      it.label = bi.label;
      it.source = bi.source;
      if (!bi.reference_answer.empty()) it.objective = "";
      items.push_back(std::move(it));
    }
  }
  int64_t limit = a.i64("limit");
  if (limit >= 0 && static_cast<int64_t>(items.size()) > limit) items.resize(static_cast<size_t>(limit));
  return items;
}

// The settings that decide the outputs; a resumed run must match them.
json generation_key(cli::Args& a) {
  json k;
  for (const char* f : {"model", "dtype", "max-new-tokens", "temperature", "top-p", "top-k",
                        "repetition-penalty", "stop", "prefilling", "max-context", "truncate-prompt",
                        "add-special-tokens", "seed"})
    k[f] = a.str(f);
  return k;
}

int run_generate(cli::Args& a) {
  runtime::set_threads(static_cast<int>(a.i64("threads")));
  std::string out = a.required("out");
  std::string model_dir = a.required("model");
  std::string stem = out.size() > 5 && out.compare(out.size() - 5, 5, ".json") == 0
                         ? out.substr(0, out.size() - 5) : out;
  std::string jsonl = stem + ".jsonl", meta_path = stem + ".jsonl.meta.json";
  auto items = load_items(a);
  infer::SamplingParams params = sampling_params(a, "generate");

  // Resume: finished items from an earlier run with the same settings.
  json key = generation_key(a);
  std::map<size_t, json> done;
  if (!a.on("overwrite") && path_exists(jsonl)) {
    SK_CHECK(path_exists(meta_path), jsonl, " exists but ", meta_path,
             " does not; pass --overwrite to start over");
    json old = read_json_file(meta_path);
    for (auto it = key.begin(); it != key.end(); ++it)
      SK_CHECK(old.value(it.key(), json()) == it.value(), jsonl, " was made with --", it.key(), " ",
               old.value(it.key(), json()).dump(), ", now ", it.value().dump(),
               "; use the same flags to resume, or --overwrite");
    std::string text = read_file(jsonl);
    size_t pos = 0, good_end = 0, line = 0;
    while (pos < text.size()) {
      size_t nl = text.find('\n', pos);
      if (nl == std::string::npos) break;  // a torn last line from an interrupted write
      ++line;
      json j = json::parse(text.begin() + pos, text.begin() + nl, nullptr, false);
      SK_CHECK(!j.is_discarded() && j.contains("index"), jsonl, ":", line,
               ": not a results line; pass --overwrite to start over");
      done[j["index"].get<size_t>()] = j;
      pos = good_end = nl + 1;
    }
    if (good_end < text.size()) write_file_atomic(jsonl, text.substr(0, good_end));
  } else {
    write_file_atomic(jsonl, "");
  }
  write_file_atomic(meta_path, key.dump(2) + "\n");

  const auto loaded = load_for_generation(a, model_dir, {"generate", "prompts are used as raw text", true, true});
  const auto& chat = loaded->chat;
  infer::Generator& gen = *loaded->gen;

  std::vector<infer::Request> reqs;
  std::vector<size_t> todo;  // item index of each request
  int64_t n_prefill = a.i64("prefilling");
  for (size_t i = 0; i < items.size(); ++i) {
    infer::Request r;
    if (chat) r.messages = items[i].messages;
    else r.prompt = items[i].messages.back().content;
    r.prefill = items[i].target;
    r.prefill_tokens = n_prefill;
    std::string prompt = gen.render(r);
    if (auto it = done.find(i); it != done.end() && it->second.value("prompt", "") == prompt) continue;
    done.erase(i);
    reqs.push_back(std::move(r));
    todo.push_back(i);
  }
  std::cerr << "generate: " << items.size() << " prompts, " << done.size() << " already done, "
            << reqs.size() << " to generate (" << runtime::describe() << ")\n";

  auto item_json = [&](size_t i, const infer::Completion& c) {
    const auto& it = items[i];
    json j = {{"index", i}, {"id", it.id}, {"instruction", it.instruction}, {"prompt", c.prompt},
              {"response", json::array({strip_response(c.text)})}, {"finish_reason", c.finish_reason},
              {"prompt_tokens", c.prompt_tokens},
              {"completion_tokens", static_cast<int64_t>(c.token_ids.size())}};
    // --save-token-ids: the generated ids (with a final eos/stop id), to compare without re-tokenizing.
    if (a.on("save-token-ids")) j["token_ids"] = c.token_ids;
    if (!a.str("guard").empty()) j["guard"] = serve::guard_json(c.guard);
    if (!it.category.empty()) j["category"] = it.category;
    if (!it.label.empty()) j["label"] = it.label;
    if (!it.objective.empty()) j["objective"] = it.objective;
    if (!it.target.empty()) j["target"] = it.target;
    if (!a.str("bench").empty()) j["bench"] = a.str("bench");
    if (it.messages.size() > 1) {
      json m = json::array();
      for (const auto& msg : it.messages) m.push_back({{"role", msg.role}, {"content", msg.content}});
      j["messages"] = m;
    }
    return j;
  };

  std::ofstream log(jsonl, std::ios::app);
  SK_CHECK(log.good(), jsonl, ": cannot open for appending");
  auto t0 = std::chrono::steady_clock::now();
  int64_t tokens = 0;
  infer::StreamFn on_text = [&](size_t r, const std::string&, bool finished, const infer::Completion* c) {
    if (!finished) return;
    json j = item_json(todo[r], *c);
    tokens += static_cast<int64_t>(c->token_ids.size());
    log << j.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
    log.flush();
    SK_CHECK(log.good(), jsonl, ": write failed");
    done[todo[r]] = std::move(j);
  };
  if (!reqs.empty()) gen.generate(reqs, std::vector<infer::SamplingParams>(reqs.size(), params), on_text);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  json meta = a.resolved();
  meta["model_name"] = model_dir.substr(model_dir.find_last_of('/') == std::string::npos ? 0 : model_dir.find_last_of('/') + 1);
  meta["data"] = a.str("bench").empty() ? a.str("prompts") : a.str("bench");
  meta["eos_token_ids"] = gen.eos_token_ids();
  json data = json::array();
  for (size_t i = 0; i < items.size(); ++i) {
    SK_CHECK(done.count(i), "generate: internal: item ", i, " has no result");
    data.push_back(done[i]);
  }
  json doc = {{"meta_info", meta}, {"data", data}};
  write_file_atomic(out, doc.dump(4, ' ', false, json::error_handler_t::replace) + "\n");
  std::cerr << "generate: wrote " << out << " (" << items.size() << " items; " << tokens
            << " new tokens in " << secs << " s, " << (secs > 0 ? tokens / secs : 0.0) << " tokens/s)\n";
  return 0;
}

cli::Registrar reg({"generate", "generate responses for a benchmark or prompt file (reference layout)",
                    "safekey generate --model DIR (--bench NAME | --prompts FILE) --out results.json",
                    run_generate});

}  // namespace
}  // namespace safekey
