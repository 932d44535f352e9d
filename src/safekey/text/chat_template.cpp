#include "safekey/text/chat_template.h"

#include "safekey/text/jinja_template.h"
#include "safekey/util/file.h"

namespace safekey::text {
namespace {

const char* kThinkClause =
    "{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}";

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string dirname_of(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

// A special token in tokenizer_config.json: a string, an AddedToken dict, or null.
std::optional<std::string> token_string(const ordered_json& cfg, const char* key, const std::string& where) {
  auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) {
    auto c = it->find("content");
    if (c != it->end() && c->is_string()) return c->get<std::string>();
  }
  fail(where, ": field '", key, "' must be a string or an AddedToken object with 'content'");
}

}  // namespace

ChatFormat::ChatFormat(const std::string& source, SpecialTokens tokens, const std::string& where)
    : source_(source), where_(where), tokens_(std::move(tokens)) {
  plain_ = std::make_shared<jinja::Template>(source, where);
  auto keep = std::make_shared<jinja::Template>(source, where);
  keep_edits_ = keep->disable_think_stripping();
  keep_ = keep;
}

ChatFormat ChatFormat::from_tokenizer_config(const ordered_json& cfg, const std::string& where,
                                             const std::string& template_name) {
  SK_CHECK(cfg.is_object(), where, ": expected a JSON object");
  auto it = cfg.find("chat_template");
  SK_CHECK(it != cfg.end() && !it->is_null(), where, ": no 'chat_template' (this tokenizer has no chat format)");
  std::string source;
  std::string name = template_name.empty() ? "default" : template_name;
  std::string tpl_where = where + ": chat_template";
  if (it->is_string()) {
    SK_CHECK(template_name.empty() || template_name == "default", where,
             ": chat_template is a single template, there is no template named '", template_name, "'");
    source = it->get<std::string>();
  } else if (it->is_array()) {
    std::string names;
    bool found = false;
    for (const auto& e : *it) {
      SK_CHECK(e.is_object() && e.contains("name") && e.contains("template") && e["name"].is_string() &&
                   e["template"].is_string(),
               where, ": chat_template list entries must be {\"name\": ..., \"template\": ...}");
      names += (names.empty() ? "" : ", ") + e["name"].get<std::string>();
      if (e["name"] == name) {
        source = e["template"].get<std::string>();
        found = true;
      }
    }
    SK_CHECK(found, where, ": no chat template named '", name, "' (available: ", names, ")");
    tpl_where = where + ": chat_template[" + name + "]";
  } else {
    fail(where, ": field 'chat_template' must be a string or a list of named templates");
  }
  SpecialTokens t;
  t.bos_token = token_string(cfg, "bos_token", where);
  t.eos_token = token_string(cfg, "eos_token", where);
  t.pad_token = token_string(cfg, "pad_token", where);
  t.unk_token = token_string(cfg, "unk_token", where);
  if (auto a = cfg.find("additional_special_tokens"); a != cfg.end() && a->is_array()) {
    for (const auto& e : *a) {
      if (e.is_string()) t.additional_special_tokens.push_back(e.get<std::string>());
      else if (e.is_object() && e.contains("content") && e["content"].is_string())
        t.additional_special_tokens.push_back(e["content"].get<std::string>());
    }
  }
  return ChatFormat(source, std::move(t), tpl_where);
}

ChatFormat ChatFormat::from_path(const std::string& path, const std::string& template_name) {
  SK_CHECK(path_exists(path), path, ": no such file or folder");
  std::string cfg_path;
  if (is_directory(path)) {
    cfg_path = path_join(path, "tokenizer_config.json");
  } else if (ends_with(path, ".jinja")) {
    return ChatFormat(read_file(path), SpecialTokens{}, path);
  } else if (ends_with(path, "tokenizer.json")) {
    cfg_path = path_join(dirname_of(path), "tokenizer_config.json");
  } else {
    cfg_path = path;
  }
  std::string folder = is_directory(path) ? path : dirname_of(cfg_path);
  std::string jinja_file = path_join(folder, "chat_template.jinja");
  ordered_json cfg = ordered_json::object();
  if (path_exists(cfg_path)) {
    std::string text = read_file(cfg_path);
    try {
      cfg = ordered_json::parse(text);
    } catch (const std::exception& e) {
      fail(cfg_path, ": invalid JSON (", e.what(), ")");
    }
  } else {
    SK_CHECK(path_exists(jinja_file), path, ": no tokenizer_config.json or chat_template.jinja beside it");
  }
  // Newer transformers saves the template as chat_template.jinja beside the config.
  if ((!cfg.contains("chat_template") || cfg["chat_template"].is_null()) && path_exists(jinja_file)) {
    cfg["chat_template"] = read_file(jinja_file);
    return from_tokenizer_config(cfg, jinja_file, template_name);
  }
  return from_tokenizer_config(cfg, cfg_path, template_name);
}

std::string ChatFormat::render_json(const ordered_json& messages, const RenderOptions& opt) const {
  const jinja::Template& t = opt.keep_thinking ? *keep_ : *plain_;
  return t.render(jinja::from_json(context(messages, opt)));
}

ordered_json ChatFormat::context(const ordered_json& messages, const RenderOptions& opt) const {
  SK_CHECK(messages.is_array(), where_, ": messages must be a JSON list of {role, content} objects");
  ordered_json ctx = ordered_json::object();
  ctx["messages"] = messages;
  ctx["tools"] = opt.tools;
  ctx["documents"] = nullptr;
  ctx["add_generation_prompt"] = opt.add_generation_prompt;
  if (tokens_.bos_token) ctx["bos_token"] = *tokens_.bos_token;
  if (tokens_.eos_token) ctx["eos_token"] = *tokens_.eos_token;
  if (tokens_.unk_token) ctx["unk_token"] = *tokens_.unk_token;
  if (tokens_.pad_token) ctx["pad_token"] = *tokens_.pad_token;
  if (!tokens_.additional_special_tokens.empty()) ctx["additional_special_tokens"] = tokens_.additional_special_tokens;
  if (opt.extra.is_object())
    for (auto it = opt.extra.begin(); it != opt.extra.end(); ++it) ctx[it.key()] = it.value();
  return ctx;
}

std::string ChatFormat::render(const std::vector<ChatMessage>& messages, const RenderOptions& opt) const {
  ordered_json list = ordered_json::array();
  for (const auto& m : messages) list.push_back(ordered_json{{"role", m.role}, {"content", m.content}});
  return render_json(list, opt);
}

std::string remove_think_stripping_clause(const std::string& source) {
  std::string out = source;
  std::string clause = kThinkClause;
  for (size_t at = out.find(clause); at != std::string::npos; at = out.find(clause, at)) out.erase(at, clause.size());
  return out;
}

void parse_template_var(const std::string& kv, ordered_json& extra) {
  size_t eq = kv.find('=');
  SK_CHECK(eq != std::string::npos && eq > 0, "--var '", kv, "': expected key=value");
  std::string key = kv.substr(0, eq), value = kv.substr(eq + 1);
  // Python spellings as a user would paste them from a transformers call.
  if (value == "True" || value == "False" || value == "None") {
    extra[key] = value == "None" ? ordered_json(nullptr) : ordered_json(value == "True");
    return;
  }
  try {
    extra[key] = ordered_json::parse(value);
  } catch (const std::exception&) {
    extra[key] = value;
  }
}

}  // namespace safekey::text
