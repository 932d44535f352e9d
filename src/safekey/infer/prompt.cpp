#include "safekey/infer/prompt.h"

#include <algorithm>

#include "safekey/text/chat_template.h"
#include "safekey/text/tokenizer.h"
#include "safekey/util/error.h"
#include "safekey/util/file.h"

namespace safekey::infer {

std::string prefill_text(const std::string& target, int64_t n, const text::Tokenizer& tok) {
  std::vector<int32_t> ids = tok.encode_ids(target, /*add_special_tokens=*/false);
  if (n >= 0 && static_cast<size_t>(n) < ids.size()) ids.resize(static_cast<size_t>(n));
  return tok.decode(ids, /*skip_special_tokens=*/true);
}

std::string render_prompt(const Request& r, const text::Tokenizer& tok, const text::ChatFormat* chat) {
  std::string text;
  if (!r.prompt.empty()) {
    text = r.prompt;
  } else {
    SK_CHECK(!r.messages.empty(), "request has no prompt and no messages");
    SK_CHECK(chat != nullptr,
             "chat messages need a chat template, and the model folder has none "
             "(tokenizer_config.json 'chat_template' or chat_template.jinja)");
    std::vector<text::ChatMessage> msgs;
    msgs.reserve(r.messages.size());
    for (const auto& m : r.messages) msgs.push_back({m.role, m.content});
    text::RenderOptions opt;
    opt.add_generation_prompt = true;  // the reference's template as shipped (no keep_thinking edit)
    text = chat->render(msgs, opt);
  }
  if (!r.prefill.empty()) text += " " + prefill_text(r.prefill, r.prefill_tokens, tok);
  return text;
}

std::vector<int64_t> encode_text(const text::Tokenizer& tok, const std::string& text,
                                 bool add_special_tokens) {
  std::vector<int32_t> ids = tok.encode_ids(text, add_special_tokens);
  return std::vector<int64_t>(ids.begin(), ids.end());
}

std::string decode_ids(const text::Tokenizer& tok, const std::vector<int64_t>& ids,
                       bool skip_special_tokens) {
  return tok.decode(ids, skip_special_tokens);
}

std::vector<int64_t> fit_context(std::vector<int64_t> ids, const SamplingParams& p,
                                 int64_t max_context, OverflowPolicy policy, size_t index) {
  SK_CHECK(!ids.empty(), "request ", index, ": the prompt is empty after tokenization");
  int64_t n = static_cast<int64_t>(ids.size());
  if (n < max_context) return ids;
  if (policy == OverflowPolicy::Error)
    fail("request ", index, ": the prompt has ", n, " tokens, which leaves no room in the context of ",
         max_context, " tokens (use a shorter prompt, a larger --max-context, or "
         "--truncate-prompt to keep its last tokens)");
  int64_t keep = std::max<int64_t>(1, max_context - p.max_new_tokens);
  ids.erase(ids.begin(), ids.end() - keep);
  return ids;
}

std::vector<int64_t> default_eos_ids(const model::ModelConfig& cfg, const text::Tokenizer& tok,
                                     const std::string& model_dir) {
  std::vector<int64_t> out;
  auto add = [&](int64_t id) {
    if (id >= 0 && std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
  };
  for (int64_t id : cfg.eos_token_ids) add(id);
  add(tok.eos_id());
  if (!model_dir.empty()) {
    std::string gc = path_join(model_dir, "generation_config.json");
    if (path_exists(gc)) {
      json j = read_json_file(gc);
      auto it = j.find("eos_token_id");
      if (it != j.end()) {
        if (it->is_number_integer()) {
          add(it->get<int64_t>());
        } else if (it->is_array()) {
          for (const auto& v : *it) {
            SK_CHECK(v.is_number_integer(), gc, ": field 'eos_token_id': expected integers");
            add(v.get<int64_t>());
          }
        } else {
          SK_CHECK(it->is_null(), gc, ": field 'eos_token_id': expected an integer or a list");
        }
      }
    }
  }
  return out;
}

}  // namespace safekey::infer
