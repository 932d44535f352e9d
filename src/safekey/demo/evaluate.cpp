// Generation + oracle judging of one toy model; see evaluate.h.
#include "safekey/demo/evaluate.h"

#include <iostream>

#include "safekey/eval/judges.h"
#include "safekey/infer/generator.h"
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
  for (const auto& [split, s] : j.at("scores").items()) {
    world::SplitScore sc;
    sc.n = s.at("n");
    sc.harmful = s.at("harmful");
    sc.refusal = s.at("refusal");
    sc.complied = s.at("complied");
    sc.unclear = s.at("unclear");
    sc.aha = s.at("aha");
    sc.u_correct = s.at("u_correct");
    sc.accuracy = s.at("accuracy");
    m.splits[split] = sc;
  }
  for (const auto& [split, v] : j.at("keyword_refusal").items()) m.keyword_refusal[split] = v.get<double>();
  return m;
}

world::ModelEval evaluate_model(const std::string& model_dir,
                                const std::map<std::string, std::vector<world::Item>>& splits,
                                const std::string& method, int64_t seed, const EvalSettings& settings,
                                const std::string& out_json) {
  if (path_exists(out_json)) return from_json(read_json_file(out_json));
  auto model = model::load_model(model_dir);
  model->eval();
  const auto tok = text::Tokenizer::from_file(model_dir);
  const auto chat = text::ChatFormat::from_path(model_dir);
  infer::GeneratorOptions gopt;
  gopt.max_batch_size = settings.batch_size;
  gopt.overflow = infer::OverflowPolicy::TruncateLeft;
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
    }
    result.splits[split] = world::score_split(items, verdicts);
    result.keyword_refusal[split] = items.empty() ? 0.0 : kw / static_cast<double>(items.size());
    details[split] = rows;
  }
  json scores, kwj;
  for (const auto& [s, sc] : result.splits) scores[s] = sc.to_json();
  for (const auto& [s, v] : result.keyword_refusal) kwj[s] = v;
  json out = {{"method", method}, {"seed", seed}, {"model", model_dir}, {"scores", scores},
              {"keyword_refusal", kwj}, {"completions", details}};
  write_file_atomic(out_json, out.dump(1) + "\n");
  return result;
}

}  // namespace safekey::demo
