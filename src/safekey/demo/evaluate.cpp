// Generation + oracle judging of one toy model; see evaluate.h.
#include "safekey/demo/evaluate.h"

#include <iostream>

#include "safekey/eval/judges.h"
#include "safekey/infer/generator.h"
#include "safekey/infer/guard.h"
#include "safekey/model/decoder.h"
#include "safekey/text/chat_template.h"
#include "safekey/text/tokenizer.h"
#include "safekey/train/data_fingerprint.h"
#include "safekey/util/error.h"
#include "safekey/util/file.h"
#include "safekey/world/oracle.h"

namespace safekey::demo {

std::string world_prompt_text(const std::string& rendered, const world::Item& item) {
  return rendered + item.prefill;
}

// The scores of the requested splits in an evaluation file.
static world::ModelEval from_json(const json& j, const std::map<std::string, std::vector<world::Item>>& splits) {
  world::ModelEval m;
  m.method = j.at("method").get<std::string>();
  m.seed = j.at("seed").get<int64_t>();
  for (const auto& [split, s] : j.at("scores").items())
    if (splits.count(split)) m.splits[split] = world::SplitScore::from_json(s);
  if (j.contains("families"))
    for (const auto& [split, fams] : j.at("families").items())
      if (splits.count(split))
        for (const auto& [family, s] : fams.items()) m.families[split][family] = world::SplitScore::from_json(s);
  for (const auto& [split, v] : j.at("keyword_refusal").items())
    if (splits.count(split)) m.keyword_refusal[split] = v.get<double>();
  return m;
}

static void read_guard_scores(const json& j, std::map<std::string, std::vector<double>>* out) {
  if (!out) return;
  for (const auto& [split, rows] : j.at("completions").items()) {
    auto& v = (*out)[split];
    for (const auto& r : rows) {
      const auto g = r.find("guard");
      v.push_back(g != r.end() && g->value("checked", false) ? g->at("score").get<double>() : -1.0);
    }
  }
}

std::string split_prompt_key(const std::vector<world::Item>& items) {
  train::Fnv64 h;
  auto str = [&](const std::string& x) {
    h.i64(static_cast<int64_t>(x.size()));
    h.bytes(x.data(), x.size());
  };
  h.i64(static_cast<int64_t>(items.size()));
  for (const auto& it : items) {
    str(it.id);
    h.i64(static_cast<int64_t>(it.messages.size()));
    for (const auto& m : it.messages) {
      str(m.role);
      str(m.content);
    }
    str(it.prefill);
  }
  return h.hex();
}

// The splits a cached evaluation file does not answer: absent, or generated for other prompts. A file
// written before prompt keys is trusted for the world's own splits (the run folder's plan fixes
// them); the template-file splits can change under the same name, so they need a matching key.
static std::map<std::string, std::vector<world::Item>> splits_to_generate(
    const json& cached, const std::map<std::string, std::vector<world::Item>>& splits,
    const std::map<std::string, std::string>& keys_now) {
  std::map<std::string, std::vector<world::Item>> todo;
  const json keys = cached.is_object() ? cached.value("prompt_keys", json::object()) : json::object();
  for (const auto& [split, items] : splits) {
    if (cached.is_object() && cached.at("scores").contains(split)) {
      const bool from_templates = split == "harmful_extra" || split == "benign_extra";
      if (keys.contains(split) ? keys[split] == keys_now.at(split) : !from_templates) continue;
    }
    todo[split] = items;
  }
  return todo;
}

world::ModelEval evaluate_model(const std::string& model_dir,
                                const std::map<std::string, std::vector<world::Item>>& splits,
                                const std::string& method, int64_t seed, const EvalSettings& settings,
                                const std::string& out_json, const infer::GuardOptions* guard,
                                std::map<std::string, std::vector<double>>* guard_scores) {
  const json cached = path_exists(out_json) ? read_json_file(out_json) : json();
  std::map<std::string, std::string> keys_now;
  for (const auto& [split, items] : splits) keys_now[split] = split_prompt_key(items);
  const auto todo = splits_to_generate(cached, splits, keys_now);
  if (todo.empty()) {
    read_guard_scores(cached, guard_scores);
    return from_json(cached, splits);
  }
  auto model = model::load_model(model_dir);
  model->eval();
  const auto tok = text::Tokenizer::from_file(model_dir);
  const auto chat = text::ChatFormat::from_path(model_dir);
  infer::GeneratorOptions gopt;
  gopt.max_batch_size = settings.batch_size;
  gopt.overflow = infer::OverflowPolicy::TruncateLeft;
  if (guard) gopt.observer = std::make_shared<infer::KeySentenceGuard>(*guard, tok, model->config().hidden_size);
  infer::Generator gen(model, tok, &chat, gopt);
  infer::SamplingParams params;
  params.max_new_tokens = settings.max_new_tokens;
  params.repetition_penalty = settings.repetition_penalty;
  text::RenderOptions ro;
  ro.add_generation_prompt = true;

  // The file keeps the requested splits: the cached ones still valid, then the generated ones.
  json out = {{"method", method}, {"seed", seed}, {"model", model_dir}, {"scores", json::object()},
              {"keyword_refusal", json::object()}, {"families", json::object()},
              {"completions", json::object()}, {"prompt_keys", json::object()}};
  for (const auto& [split, items] : splits) {
    if (todo.count(split)) continue;
    for (const char* k : {"scores", "keyword_refusal", "families", "completions"})
      if (cached.contains(k) && cached.at(k).contains(split)) out[k][split] = cached.at(k).at(split);
    out["prompt_keys"][split] = keys_now.at(split);
  }
  for (const auto& [split, items] : todo) {
    std::vector<infer::Request> reqs;
    for (const auto& it : items) {
      std::vector<text::ChatMessage> msgs;
      for (const auto& m : it.messages) msgs.push_back(text::ChatMessage{m.role, m.content});
      infer::Request r;
      r.prompt = world_prompt_text(chat.render(msgs, ro), it);
      reqs.push_back(std::move(r));
    }
    const auto outs = gen.generate(reqs, params);
    std::vector<world::Verdict> verdicts;
    json rows = json::array();
    double kw = 0;
    for (size_t i = 0; i < items.size(); ++i) {
      verdicts.push_back(world::judge_reply(items[i], outs[i].text));
      const bool kw_refused = !eval::match_refusal_phrase(verdicts.back().answer).empty();
      kw += kw_refused;
      rows.push_back({{"id", items[i].id}, {"completion", outs[i].text}, {"finish", outs[i].finish_reason},
                      {"verdict", verdicts.back().to_json()}, {"keyword_refusal", kw_refused}});
      if (guard) {
        const auto& g = outs[i].guard;
        rows.back()["guard"] = {{"checked", g.checked}, {"fired", g.fired}, {"score", g.score},
                                {"p_u", g.p_u}, {"p_xu", g.p_xu}};
      }
    }
    out["scores"][split] = world::score_split(items, verdicts).to_json();
    json fams = json::object();
    for (const auto& [f, sc] : world::score_families(items, verdicts)) fams[f] = sc.to_json();
    out["families"][split] = fams;
    out["keyword_refusal"][split] = items.empty() ? 0.0 : kw / static_cast<double>(items.size());
    out["completions"][split] = rows;
    out["prompt_keys"][split] = keys_now.at(split);
  }
  if (guard) out["guard"] = {{"threshold", guard->threshold}, {"score", infer::guard_score_name(guard->score)},
                             {"key", guard->key_sentence}, {"observe_only", guard->observe_only}};
  write_file_atomic(out_json, out.dump(1) + "\n");
  read_guard_scores(out, guard_scores);
  return from_json(out, splits);
}

}  // namespace safekey::demo
