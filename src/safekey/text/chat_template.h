// Chat formats rendered from the model's own `chat_template` (tokenizer_config.json), byte-identical
// to transformers' apply_chat_template(tokenize=False) with Python Jinja (see docs/chat_template.md).
//
//   auto fmt = safekey::text::ChatFormat::from_path("models/R1-Distill-Qwen-7B");  // folder / json / .jinja
//   RenderOptions opt;  opt.add_generation_prompt = true;
//   std::string prompt = fmt.render({{"user", "What is 17 * 24?"}}, opt);   // or render_json(messages)
//
// The context is the one transformers builds: messages, tools (None unless given), documents
// (None), add_generation_prompt, the special tokens that are set (bos_token, eos_token, pad_token,
// unk_token as strings; additional_special_tokens), then `extra` variables (e.g. enable_thinking).
//
// keep_thinking reproduces the SafeKey reference's template edit: the clause
//   {% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}
// that cuts earlier reasoning out of assistant turns is disabled, so assistant turns keep their
// <think> block. Templates without that clause (Qwen3) render unchanged (keep_thinking_edits() == 0).
#pragma once
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "safekey/util/json.h"

namespace safekey::text {

namespace jinja {
class Template;
}

struct ChatMessage {
  std::string role;
  std::string content;
};

struct SpecialTokens {
  std::optional<std::string> bos_token, eos_token, pad_token, unk_token;
  std::vector<std::string> additional_special_tokens;
};

struct RenderOptions {
  bool add_generation_prompt = false;
  bool keep_thinking = false;
  ordered_json tools;                            // null = no tools (rendered as None)
  ordered_json extra = ordered_json::object();   // more template variables; override the defaults
};

class ChatFormat {
 public:
  // `source`: the template text; `where` names it in errors ("model/tokenizer_config.json").
  ChatFormat(const std::string& source, SpecialTokens tokens, const std::string& where);

  // A model folder (tokenizer_config.json, or chat_template.jinja), a tokenizer_config.json, a
  // tokenizer.json (its folder's tokenizer_config.json is used) or a bare .jinja template file.
  // `template_name` selects one of a named-template list (default: "default").
  static ChatFormat from_path(const std::string& path, const std::string& template_name = "");
  // From a parsed tokenizer_config.json.
  static ChatFormat from_tokenizer_config(const ordered_json& config, const std::string& where,
                                          const std::string& template_name = "");

  // `messages`: a JSON list of {role, content, ...} objects (key order is kept, as for tojson).
  std::string render_json(const ordered_json& messages, const RenderOptions& options) const;
  std::string render(const std::vector<ChatMessage>& messages, const RenderOptions& options) const;
  // The variables render() passes to the template (what transformers passes to Jinja).
  ordered_json context(const ordered_json& messages, const RenderOptions& options) const;

  const std::string& source() const { return source_; }
  const std::string& where() const { return where_; }
  const SpecialTokens& special_tokens() const { return tokens_; }
  // How many think-stripping clauses the keep_thinking edit disables in this template.
  int keep_thinking_edits() const { return keep_edits_; }

 private:
  std::string source_, where_;
  SpecialTokens tokens_;
  std::shared_ptr<const jinja::Template> plain_, keep_;
  int keep_edits_ = 0;
};

// The SafeKey reference's textual edit of a template (removes every occurrence of the exact
// R1-Distill clause above); for comparing against Jinja2 on the edited template.
std::string remove_think_stripping_clause(const std::string& source);

// Parses `key=value` (value as JSON when it parses, else as a string) into `extra`.
void parse_template_var(const std::string& key_value, ordered_json& extra);

}  // namespace safekey::text
