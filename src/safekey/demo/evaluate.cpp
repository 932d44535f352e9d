// Generation + oracle judging of one toy model; see evaluate.h.
#include "safekey/demo/evaluate.h"

#include <iostream>

#include "safekey/eval/judges.h"
#include "safekey/infer/generator.h"
#include "safekey/infer/guard.h"
#include "safekey/model/decoder.h"
#include "safekey/text/chat_template.h"
#include "safekey/text/tokenizer.h"
#include "safekey/util/error.h"
#include "safekey/util/file.h"
#include "safekey/world/oracle.h"

namespace safekey::demo {

std::string world_prompt_text(const std::string& rendered, const world::Item& item) {
  return rendered + item.prefill;
}

static world::ModelEval from_json(const json& j) {
  world::ModelEval m;
  m.method = j.at("method").get<std::string>();
  m.seed = j.at("seed").get<int64_t>();
  for (const auto& [split, s] : j.at("scores").items()) m.splits[split] = world::SplitScore::from_json(s);
  if (j.contains("families"))
    for (const auto& [split, fams] : j.at("families").items())
      for (const auto& [family, s] : fams.items()) m.families[split][family] = world::SplitScore::from_json(s);
  for (const auto& [split, v] : j.at("keyword_refusal").items()) m.keyword_refusal[split] = v.get<double>();
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

world::ModelEval evaluate_model(const std::string& model_dir,
                                const std::map<std::string, std::vector<world::Item>>& splits,
                                const std::string& method, int64_t seed, const EvalSettings& settings,
                                const std::string& out_json, const infer::GuardOptions* guard,
                                std::map<std::string, std::vector<double>>* guard_scores) {
  if (path_exists(out_json)) {
    const json j = read_json_file(out_json);
    read_guard_scores(j, guard_scores);
    return from_json(j);
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

  world::ModelEval result;
  result.method = method;
  result.seed = seed;
  json details = json::object();
  for (const auto& [split, items] : splits) {
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
    result.splits[split] = world::score_split(items, verdicts);
    result.families[split] = world::score_families(items, verdicts);
    result.keyword_refusal[split] = items.empty() ? 0.0 : kw / static_cast<double>(items.size());
    details[split] = rows;
  }
  json scores, kwj, fams = json::object();
  for (const auto& [s, sc] : result.splits) scores[s] = sc.to_json();
  for (const auto& [s, by] : result.families)
    for (const auto& [f, sc] : by) fams[s][f] = sc.to_json();
  for (const auto& [s, v] : result.keyword_refusal) kwj[s] = v;
  json out = {{"method", method}, {"seed", seed}, {"model", model_dir}, {"scores", scores},
              {"keyword_refusal", kwj}, {"families", fams}, {"completions", details}};
  if (guard) out["guard"] = {{"threshold", guard->threshold}, {"score", infer::guard_score_name(guard->score)},
                             {"key", guard->key_sentence}, {"observe_only", guard->observe_only}};
  write_file_atomic(out_json, out.dump(1) + "\n");
  read_guard_scores(out, guard_scores);
  return result;
}

}  // namespace safekey::demo
