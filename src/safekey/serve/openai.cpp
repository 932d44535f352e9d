#include "safekey/serve/openai.h"

#include <algorithm>
#include <cmath>

namespace safekey::serve {

namespace {

const char* kThinkStart = "<think>";
const char* kThinkEnd = "</think>";

ApiError bad(const std::string& param, const std::string& code, const std::string& msg) {
  ApiError e;
  e.status = 400;
  e.param = param;
  e.code = code;
  e.message = msg;
  return e;
}

ApiError wrong_type(const std::string& param, const char* want, const json& got) {
  return bad(param, "invalid_type",
             cat("'", param, "' must be ", want, " (got ", got.type_name(), ")"));
}

// Field readers: return an error when the field is present with the wrong type / range.
std::optional<ApiError> get_int(const json& j, const char* key, int64_t lo, int64_t hi,
                                std::optional<int64_t>* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_number_integer()) return wrong_type(key, "an integer", *it);
  int64_t v = it->get<int64_t>();
  if (v < lo || v > hi)
    return bad(key, "invalid_value", cat("'", key, "' must be in [", lo, ", ", hi, "] (got ", v, ")"));
  *out = v;
  return std::nullopt;
}

std::optional<ApiError> get_num(const json& j, const char* key, double lo, double hi,
                                bool lo_open, std::optional<double>* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_number()) return wrong_type(key, "a number", *it);
  double v = it->get<double>();
  if (!std::isfinite(v) || v < lo || v > hi || (lo_open && v == lo))
    return bad(key, "invalid_value",
               cat("'", key, "' must be in ", lo_open ? "(" : "[", lo, ", ", hi, "] (got ", v, ")"));
  *out = v;
  return std::nullopt;
}

std::optional<ApiError> get_bool(const json& j, const char* key, std::optional<bool>* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean()) return wrong_type(key, "a boolean", *it);
  *out = it->get<bool>();
  return std::nullopt;
}

#define SK_TRY(expr)                        \
  do {                                      \
    if (auto e_ = (expr)) return e_;        \
  } while (0)

std::optional<ApiError> parse_common(const json& j, const std::vector<std::string>& served,
                                     const Limits& lim, bool chat, ParsedRequest* out) {
  if (auto it = j.find("model"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) return wrong_type("model", "a string", *it);
    out->model = it->get<std::string>();
    if (std::find(served.begin(), served.end(), out->model) == served.end()) {
      ApiError e;
      e.status = 404;
      e.type = "invalid_request_error";
      e.code = "model_not_found";
      e.param = "model";
      std::string names;
      for (const auto& n : served) names += (names.empty() ? "`" : ", `") + n + "`";
      e.message = cat("The model `", out->model, "` does not exist (this server serves ", names, ")");
      return e;
    }
  }
  auto& p = out->params;
  std::optional<int64_t> max_tokens, top_k, seed, n;
  SK_TRY(get_int(j, "max_tokens", 1, lim.max_tokens_limit, &max_tokens));
  if (chat && !max_tokens) SK_TRY(get_int(j, "max_completion_tokens", 1, lim.max_tokens_limit, &max_tokens));
  p.max_new_tokens = max_tokens.value_or(std::min(lim.default_max_tokens, lim.max_tokens_limit));
  std::optional<double> temperature, top_p, rep, presence, frequency;
  SK_TRY(get_num(j, "temperature", 0.0, 100.0, false, &temperature));
  SK_TRY(get_num(j, "top_p", 0.0, 1.0, true, &top_p));
  SK_TRY(get_int(j, "top_k", -1, 1'000'000'000, &top_k));
  SK_TRY(get_num(j, "repetition_penalty", 0.0, 100.0, true, &rep));
  SK_TRY(get_int(j, "seed", INT64_MIN, INT64_MAX, &seed));
  SK_TRY(get_int(j, "n", 1, 1, &n));
  SK_TRY(get_num(j, "presence_penalty", 0.0, 0.0, false, &presence));
  SK_TRY(get_num(j, "frequency_penalty", 0.0, 0.0, false, &frequency));
  // OpenAI's default temperature is 1; greedy needs temperature 0 explicitly (as with vLLM).
  p.temperature = temperature.value_or(1.0);
  p.top_p = top_p.value_or(1.0);
  p.top_k = top_k.value_or(-1);
  p.repetition_penalty = rep.value_or(1.0);
  if (seed) p.seed = static_cast<uint64_t>(*seed);
  std::optional<bool> stream, ignore_eos, skip_special, logprobs;
  SK_TRY(get_bool(j, "stream", &stream));
  SK_TRY(get_bool(j, "ignore_eos", &ignore_eos));
  SK_TRY(get_bool(j, "skip_special_tokens", &skip_special));
  SK_TRY(get_bool(j, "logprobs", &logprobs));
  if (logprobs.value_or(false)) return bad("logprobs", "unsupported", "'logprobs' is not supported");
  out->stream = stream.value_or(false);
  p.ignore_eos = ignore_eos.value_or(false);
  p.skip_special_tokens = skip_special.value_or(true);
  if (auto it = j.find("stream_options"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return wrong_type("stream_options", "an object", *it);
    std::optional<bool> usage;
    SK_TRY(get_bool(*it, "include_usage", &usage));
    out->include_usage = usage.value_or(false);
  }
  if (auto it = j.find("stop"); it != j.end() && !it->is_null()) {
    if (it->is_string()) {
      p.stop.push_back(it->get<std::string>());
    } else if (it->is_array()) {
      if (it->size() > lim.max_stop)
        return bad("stop", "invalid_value", cat("'stop' has more than ", lim.max_stop, " strings"));
      for (const auto& s : *it) {
        if (!s.is_string()) return wrong_type("stop", "a string or a list of strings", s);
        p.stop.push_back(s.get<std::string>());
      }
    } else {
      return wrong_type("stop", "a string or a list of strings", *it);
    }
    for (const auto& s : p.stop)
      if (s.empty()) return bad("stop", "invalid_value", "'stop' strings must not be empty");
  }
  return std::nullopt;
}

std::optional<ApiError> parse_messages(const json& j, const Limits& lim, infer::Request* r) {
  auto it = j.find("messages");
  if (it == j.end() || it->is_null())
    return bad("messages", "missing_field", "'messages' is required");
  if (!it->is_array()) return wrong_type("messages", "a list", *it);
  if (it->empty()) return bad("messages", "invalid_value", "'messages' must not be empty");
  if (it->size() > lim.max_messages)
    return bad("messages", "invalid_value", cat("'messages' has more than ", lim.max_messages, " entries"));
  for (size_t i = 0; i < it->size(); ++i) {
    const json& m = (*it)[i];
    std::string where = cat("messages[", i, "]");
    if (!m.is_object()) return wrong_type(where, "an object", m);
    auto role = m.find("role");
    if (role == m.end() || !role->is_string())
      return bad(where + ".role", "missing_field", cat("'", where, ".role' must be a string"));
    std::string rs = role->get<std::string>();
    if (rs != "system" && rs != "user" && rs != "assistant")
      return bad(where + ".role", "invalid_value",
                 cat("'", where, ".role' must be system, user or assistant (got '", rs, "')"));
    auto content = m.find("content");
    std::string text;
    if (content == m.end() || content->is_null()) {
      return bad(where + ".content", "missing_field", cat("'", where, ".content' is required"));
    } else if (content->is_string()) {
      text = content->get<std::string>();
    } else if (content->is_array()) {
      for (const auto& part : *content) {
        if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") ||
            !part["text"].is_string())
          return bad(where + ".content", "invalid_type",
                     cat("'", where, ".content' parts must be {\"type\": \"text\", \"text\": string}"));
        text += part["text"].get<std::string>();
      }
    } else {
      return wrong_type(where + ".content", "a string or a list of text parts", *content);
    }
    r->messages.push_back({rs, text});
  }
  return std::nullopt;
}

std::optional<ApiError> parse_prompt(const json& j, infer::Request* r) {
  auto it = j.find("prompt");
  if (it == j.end() || it->is_null()) return bad("prompt", "missing_field", "'prompt' is required");
  const json* p = &*it;
  if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) p = &(*p)[0];
  if (p->is_string()) {
    r->prompt = p->get<std::string>();
    if (r->prompt.empty()) return bad("prompt", "invalid_value", "'prompt' must not be empty");
    return std::nullopt;
  }
  if (p->is_array() && !p->empty()) {
    for (const auto& t : *p) {
      if (!t.is_number_integer())
        return bad("prompt", "invalid_type",
                   "'prompt' must be a string, a list of one string, or a list of token ids");
      r->prompt_ids.push_back(t.get<int64_t>());
    }
    return std::nullopt;
  }
  return bad("prompt", "invalid_type",
             "'prompt' must be a string, a list of one string, or a list of token ids");
}

}  // namespace

json error_body(const ApiError& e) {
  json err = {{"message", e.message}, {"type", e.type}, {"code", e.code.empty() ? json() : json(e.code)}};
  err["param"] = e.param.empty() ? json() : json(e.param);
  return {{"error", err}};
}

std::optional<ApiError> parse_request(Endpoint ep, const std::string& body,
                                      const std::vector<std::string>& served_model, const Limits& lim,
                                      ParsedRequest* out) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    // Reparse for the position of the error.
    std::string why = "the body is not valid JSON";
    try {
      json again = json::parse(body);
      (void)again;
    } catch (const json::parse_error& e) {
      why = cat("the body is not valid JSON (byte ", e.byte, ")");
    } catch (const json::out_of_range& e) {  // a number beyond double's range (1e400)
      why = cat("the body is not valid JSON (", e.what(), ")");
    }
    return bad("", "invalid_json", why);
  }
  if (!j.is_object()) return wrong_type("body", "a JSON object", j);
  out->endpoint = ep;
  SK_TRY(parse_common(j, served_model, lim, ep == Endpoint::Chat, out));
  if (ep == Endpoint::Chat) {
    SK_TRY(parse_messages(j, lim, &out->request));
  } else {
    std::optional<bool> echo;
    SK_TRY(get_bool(j, "echo", &echo));
    if (echo.value_or(false)) return bad("echo", "unsupported", "'echo' is not supported");
    SK_TRY(parse_prompt(j, &out->request));
  }
  return std::nullopt;
}

ReasoningSplit split_reasoning(const std::string& text_in) {
  std::string text = text_in;
  if (text.rfind(kThinkStart, 0) == 0) text.erase(0, std::string(kThinkStart).size());
  ReasoningSplit r;
  size_t e = text.find(kThinkEnd);
  if (e == std::string::npos) {
    r.reasoning = text;  // still thinking (or cut by max_tokens)
    return r;
  }
  r.reasoning = text.substr(0, e);
  std::string rest = text.substr(e + std::string(kThinkEnd).size());
  if (!rest.empty()) r.content = rest;
  return r;
}

namespace {
// Length of the longest suffix of s that is a proper prefix of tag.
size_t partial_tag_suffix(const std::string& s, const std::string& tag) {
  for (size_t k = std::min(s.size(), tag.size() - 1); k > 0; --k)
    if (s.compare(s.size() - k, k, tag, 0, k) == 0) return k;
  return 0;
}
}  // namespace

void ReasoningStream::push(const std::string& delta, std::string* reasoning, std::string* content) {
  pending_ += delta;
  const std::string start(kThinkStart), end(kThinkEnd);
  if (!started_) {
    if (pending_.size() < start.size() && start.compare(0, pending_.size(), pending_) == 0) return;
    if (pending_.rfind(start, 0) == 0) pending_.erase(0, start.size());
    started_ = true;
  }
  if (!in_content_) {
    size_t e = pending_.find(end);
    if (e != std::string::npos) {
      *reasoning += pending_.substr(0, e);
      pending_.erase(0, e + end.size());
      in_content_ = true;
    } else {
      size_t hold = partial_tag_suffix(pending_, end);
      *reasoning += pending_.substr(0, pending_.size() - hold);
      pending_.erase(0, pending_.size() - hold);
      return;
    }
  }
  *content += pending_;
  pending_.clear();
}

void ReasoningStream::finish(std::string* reasoning, std::string* content) {
  if (!started_ && pending_.rfind(kThinkStart, 0) == 0) pending_.erase(0, std::string(kThinkStart).size());
  started_ = true;
  if (in_content_) *content += pending_;
  else *reasoning += pending_;
  pending_.clear();
}

json guard_json(const infer::GuardVerdict& v) {
  if (!v.checked) return {{"checked", false}, {"fired", false}};
  return {{"checked", true}, {"fired", v.fired}, {"p_u", v.p_u}, {"p_xu", v.p_xu}, {"score", v.score},
          {"u_tokens", v.u_tokens}};
}

json usage_json(const infer::Completion& c) {
  int64_t n = static_cast<int64_t>(c.token_ids.size());
  return {{"prompt_tokens", c.prompt_tokens}, {"completion_tokens", n},
          {"total_tokens", c.prompt_tokens + n}};
}

json chat_response(const std::string& id, int64_t created, const std::string& model,
                   const infer::Completion& c, bool reasoning_parser) {
  json msg = {{"role", "assistant"}};
  if (reasoning_parser) {
    auto s = split_reasoning(c.text);
    msg["content"] = s.content ? json(*s.content) : json();
    msg["reasoning_content"] = s.reasoning ? json(*s.reasoning) : json();
  } else {
    msg["content"] = c.text;
  }
  json choice = {{"index", 0}, {"message", msg}, {"finish_reason", c.finish_reason},
                 {"logprobs", nullptr}};
  if (c.guard.checked) choice["safekey_guard"] = guard_json(c.guard);
  return {{"id", id},           {"object", "chat.completion"}, {"created", created},
          {"model", model},     {"choices", json::array({choice})},
          {"usage", usage_json(c)}};
}

json completion_response(const std::string& id, int64_t created, const std::string& model,
                         const infer::Completion& c) {
  json choice = {{"index", 0}, {"text", c.text}, {"finish_reason", c.finish_reason},
                 {"logprobs", nullptr}};
  if (c.guard.checked) choice["safekey_guard"] = guard_json(c.guard);
  return {{"id", id},       {"object", "text_completion"},  {"created", created},
          {"model", model}, {"choices", json::array({choice})}, {"usage", usage_json(c)}};
}

json chat_chunk(const std::string& id, int64_t created, const std::string& model,
                const json& delta, const json& finish_reason) {
  json choice = {{"index", 0}, {"delta", delta}, {"finish_reason", finish_reason}, {"logprobs", nullptr}};
  return {{"id", id}, {"object", "chat.completion.chunk"}, {"created", created},
          {"model", model}, {"choices", json::array({choice})}};
}

json completion_chunk(const std::string& id, int64_t created, const std::string& model,
                      const std::string& text, const json& finish_reason) {
  json choice = {{"index", 0}, {"text", text}, {"finish_reason", finish_reason}, {"logprobs", nullptr}};
  return {{"id", id}, {"object", "text_completion"}, {"created", created},
          {"model", model}, {"choices", json::array({choice})}};
}

}  // namespace safekey::serve
