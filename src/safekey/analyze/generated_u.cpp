// The model's own U during generation; see generated_u.h.
#include "safekey/analyze/generated_u.h"

#include "safekey/infer/engine.h"
#include "safekey/util/error.h"

namespace safekey::analyze {

GeneratedUStates::GeneratedUStates(const text::Tokenizer& tok, int64_t max_u_tokens)
    : tok_(tok), max_u_tokens_(max_u_tokens) {}

void GeneratedUStates::on_step(infer::StepView& step, infer::Engine& engine) {
  for (size_t i = 0; i < step.ids.size(); ++i) {
    const uint64_t id = step.ids[i];
    if (step.prefill) rows_.insert_or_assign(id, Row(infer::UFinder(tok_, max_u_tokens_)));
    auto it = rows_.find(id);
    if (it == rows_.end() || step.fed[i] < 0) continue;
    Row& r = it->second;
    if (r.finder.done()) continue;
    if (auto u = r.finder.push(step.fed[i], step.hidden[static_cast<int64_t>(i)])) {
      r.u.found = true;
      r.u.tokens = u->tokens;
      r.u.text = r.finder.text().substr(0, r.finder.text_end(u->tokens));
      r.u.last = r.finder.hidden(u->tokens - 1).cpu();
    }
    if (r.finder.done()) {
      r.finder.release();
      if (stop_token_ >= 0) engine.force(id, {stop_token_});
    }
  }
}

void GeneratedUStates::on_finish(uint64_t id, infer::Completion&) {
  auto it = rows_.find(id);
  if (it == rows_.end()) return;
  done_[id] = std::move(it->second.u);
  rows_.erase(it);
}

GeneratedUFeatures generated_end_of_u_features(model::DecoderModel& model, const text::Tokenizer& tok,
                                               const std::vector<data::TokenizedExample>& examples,
                                               const GeneratedUOptions& opt) {
  SK_CHECK(opt.max_u_tokens >= 1, "analyze probe: --max-u-tokens must be >= 1, not ", opt.max_u_tokens);
  SK_CHECK(opt.batch_size >= 1, "analyze probe: --batch-size must be >= 1, not ", opt.batch_size);
  torch::NoGradGuard no_grad;
  model->eval();
  infer::GeneratorOptions go;
  go.max_batch_size = opt.batch_size;
  auto states = std::make_shared<GeneratedUStates>(tok, opt.max_u_tokens);
  go.observer = states;
  infer::Generator gen(model, tok, nullptr, go);
  if (!gen.eos_token_ids().empty()) states->stop_with(gen.eos_token_ids().front());
  std::vector<infer::Request> requests(examples.size());
  for (size_t i = 0; i < examples.size(); ++i) {
    const auto& ex = examples[i];
    SK_CHECK(ex.query_len >= 1 && ex.query_len <= static_cast<int64_t>(ex.input_ids.size()), "analyze probe: ",
             ex.source, " has no prompt tokens");
    requests[i].prompt_ids.assign(ex.input_ids.begin(), ex.input_ids.begin() + ex.query_len);
  }
  infer::SamplingParams p;
  p.max_new_tokens = opt.max_u_tokens + 1;  // one more token decides a U that ends the text so far
  p.repetition_penalty = opt.repetition_penalty;
  gen.generate(requests, p);

  GeneratedUFeatures out;
  std::vector<torch::Tensor> rows;
  const auto& found = states->results();
  for (size_t i = 0; i < examples.size(); ++i) {
    auto it = found.find(i);
    if (it == found.end() || !it->second.found) {
      ++out.skipped;
      continue;
    }
    rows.push_back(it->second.last);
    out.labels.push_back(examples[i].unsafe);
    out.examples.push_back(i);
    out.texts.push_back(it->second.text);
    out.tokens.push_back(it->second.tokens);
  }
  SK_CHECK(!rows.empty(), "analyze probe --generated: none of the ", examples.size(), " replies has a first sentence "
           "within ", opt.max_u_tokens, " tokens (raise --max-u-tokens?)");
  out.features = torch::stack(rows);
  return out;
}

}  // namespace safekey::analyze
