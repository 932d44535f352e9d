#include "safekey/infer/guard.h"

#include <algorithm>

#include "safekey/infer/prompt.h"
#include "safekey/text/tokenizer.h"
#include "safekey/util/error.h"
#include "safekey/util/file.h"

namespace safekey::infer {

GuardScore parse_guard_score(const std::string& s) {
  if (s == "u") return GuardScore::U;
  if (s == "xu") return GuardScore::XU;
  if (s == "mean") return GuardScore::Mean;
  if (s == "max") return GuardScore::Max;
  throw Error("--guard-score: '" + s + "' is not one of u, xu, mean, max");
}

const char* guard_score_name(GuardScore s) {
  switch (s) {
    case GuardScore::U: return "u";
    case GuardScore::XU: return "xu";
    case GuardScore::Mean: return "mean";
    case GuardScore::Max: return "max";
  }
  return "?";
}

namespace {
std::string head_file(const std::string& path) {
  if (!is_directory(path)) return path;
  const std::string f = path_join(path, "safety_head.safetensors");
  SK_CHECK(path_exists(f), "--guard: ", path, " is a folder without safety_head.safetensors (SafeKey checkpoints "
           "have one; SFT checkpoints do not)");
  return f;
}
}  // namespace

KeySentenceGuard::KeySentenceGuard(GuardOptions opts, const text::Tokenizer& tok, int64_t hidden_size)
    : opts_(std::move(opts)), tok_(tok), head_(hidden_size) {
  SK_CHECK(!opts_.head_path.empty(), "--guard: a safety head file or checkpoint folder is required");
  SK_CHECK(!opts_.key_sentence.empty(), "--guard-key: the key sentence to force must not be empty");
  SK_CHECK(opts_.threshold >= 0.0 && opts_.threshold <= 1.0, "--guard-threshold: ", opts_.threshold,
           " is not a probability in [0, 1]");
  SK_CHECK(opts_.max_u_tokens >= 1, "guard: max_u_tokens must be >= 1");
  opts_.head_path = head_file(opts_.head_path);
  const int64_t h = model::safety_head_hidden_size(opts_.head_path);
  SK_CHECK(h == hidden_size, "--guard: ", opts_.head_path, " is a head for hidden size ", h, ", the model's is ",
           hidden_size);
  model::load_safety_head(head_, opts_.head_path);
  head_->eval();
  auto enc = [&](const std::string& s) {
    auto ids = tok_.encode_ids(s, false);
    return std::vector<int64_t>(ids.begin(), ids.end());
  };
  key_ids_ = enc(opts_.key_sentence);
  key_ids_sep_ = enc(opts_.separator + opts_.key_sentence);
  SK_CHECK(!key_ids_.empty(), "--guard-key: the key sentence encodes to no tokens");
}

double KeySentenceGuard::score(const model::HeadScores& s) const {
  switch (opts_.score) {
    case GuardScore::U: return s.p_u;
    case GuardScore::XU: return s.p_xu;
    case GuardScore::Mean: return 0.5 * (s.p_u + s.p_xu);
    case GuardScore::Max: return std::max(s.p_u, s.p_xu);
  }
  return 0;
}

void KeySentenceGuard::on_step(StepView& step, Engine& engine) {
  const auto dev = step.hidden.device();
  if (head_->C_head->weight.device() != dev) head_->to(dev);
  for (size_t i = 0; i < step.ids.size(); ++i) {
    const uint64_t id = step.ids[i];
    if (step.prefill) {
      Row r(UFinder(tok_, opts_.max_u_tokens));
      r.prompt_sum = step.prompt_hidden_sum[static_cast<int64_t>(i)].clone();
      r.prompt_len = step.prompt_len[i];
      rows_.insert_or_assign(id, std::move(r));
    }
    auto it = rows_.find(id);
    if (it == rows_.end() || it->second.u.done() || step.fed[i] < 0) continue;
    Row& r = it->second;
    if (auto u = r.u.push(step.fed[i], step.hidden[static_cast<int64_t>(i)])) check(r, *u, id, engine);
    if (r.u.done()) {  // the verdict is final: the per-token states are not needed any more
      r.prompt_sum = torch::Tensor();
      r.u.release();
    }
  }
}

void KeySentenceGuard::check(Row& r, const UFinder::Candidate& u, uint64_t id, Engine& engine) {
  const torch::Tensor sum = r.u.hidden_sum(u.tokens);
  const torch::Tensor h_u = sum / static_cast<double>(u.tokens);
  const torch::Tensor h_xu = (r.prompt_sum + sum) / static_cast<double>(r.prompt_len + u.tokens);
  const model::HeadScores s = model::score_safety_head(head_, h_u, h_xu);
  r.verdict.checked = true;
  r.verdict.p_u = s.p_u;
  r.verdict.p_xu = s.p_xu;
  r.verdict.score = score(s);
  r.verdict.u_tokens = u.tokens;
  if (!opts_.observe_only && r.verdict.score >= opts_.threshold) {
    r.verdict.fired = true;
    engine.force(id, u.at_end ? key_ids_sep_ : key_ids_);
    r.u.stop();
  }
}

void KeySentenceGuard::on_finish(uint64_t id, Completion& c) {
  auto it = rows_.find(id);
  if (it == rows_.end()) return;
  c.guard = it->second.verdict;
  rows_.erase(it);
}

}  // namespace safekey::infer
