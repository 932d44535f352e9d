// The OpenAI-compatible wire format: request parsing with typed errors, response bodies, SSE chunks,
// and vLLM's deepseek_r1 reasoning split (text before </think> is `reasoning_content`, after it is
// `content`; a leading <think> is dropped). See docs/server.md for every accepted field.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "safekey/infer/generator.h"
#include "safekey/util/json.h"

namespace safekey::serve {

// An error returned to the client as {"error": {"message", "type", "code", "param"}}.
struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string code;   // "invalid_json", "missing_field", "invalid_type", "invalid_value",
                      // "model_not_found", "context_length_exceeded", ...
  std::string param;  // the offending field, when there is one
};
json error_body(const ApiError& e);

struct Limits {
  int64_t max_tokens_limit = 4096;   // largest max_tokens a request may ask for
  int64_t default_max_tokens = 512;  // when the request gives none
  size_t max_messages = 256;
  size_t max_stop = 8;
};

enum class Endpoint { Chat, Completion };

struct ParsedRequest {
  Endpoint endpoint = Endpoint::Chat;
  infer::Request request;
  infer::SamplingParams params;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  std::string model;           // as sent (empty when absent)
};

// Parses a request body. Returns an ApiError (4xx) for invalid JSON, wrong types, missing or
// out-of-range fields, and models other than the served ones (`served_models`: the base model's
// name first, then any LoRA adapters served beside it).
std::optional<ApiError> parse_request(Endpoint ep, const std::string& body,
                                      const std::vector<std::string>& served_models, const Limits& lim,
                                      ParsedRequest* out);

// vLLM's deepseek_r1 reasoning parser over a finished text.
struct ReasoningSplit {
  std::optional<std::string> reasoning;  // null when there is no </think>... see docs
  std::optional<std::string> content;
};
ReasoningSplit split_reasoning(const std::string& text);

// The same split, incrementally, for streamed deltas: text that could be part of "<think>" or
// "</think>" is held back until it cannot be.
class ReasoningStream {
 public:
  // Feeds new text; appends to *reasoning / *content what is now final.
  void push(const std::string& delta, std::string* reasoning, std::string* content);
  // End of stream: flushes what was held back.
  void finish(std::string* reasoning, std::string* content);

 private:
  std::string pending_;
  bool started_ = false;  // past the optional leading "<think>"
  bool in_content_ = false;
};

// Non-streaming response bodies.
json chat_response(const std::string& id, int64_t created, const std::string& model,
                   const infer::Completion& c, bool reasoning_parser);
json completion_response(const std::string& id, int64_t created, const std::string& model,
                         const infer::Completion& c);
json usage_json(const infer::Completion& c);
// The key-sentence guard's verdict ({"checked", "fired", "p_u", "p_xu", "score", "u_tokens"}); the
// server adds it to a choice as "safekey_guard" when a guard runs, generate and eval to each result.
json guard_json(const infer::GuardVerdict& v);

// Streaming chunk bodies (the JSON after "data: ").
json chat_chunk(const std::string& id, int64_t created, const std::string& model,
                const json& delta, const json& finish_reason);
json completion_chunk(const std::string& id, int64_t created, const std::string& model,
                      const std::string& text, const json& finish_reason);

}  // namespace safekey::serve
