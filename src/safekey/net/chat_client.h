// An OpenAI-compatible chat-completions client (POST {endpoint}/v1/chat/completions; a request with a
// raw `prompt` goes to {endpoint}/v1/completions) on cpp-httplib. Plain http always; https when cpp-httplib was built with OpenSSL (Debian's 0.11
// package is, see CPPHTTPLIB_OPENSSL_SUPPORT; `https_supported()` says so at run time).
//
// Failure policy (docs/evaluation.md):
//  - 429, 5xx and network errors (connection refused, reset, timeout) are retried with exponential
//    backoff (initial_backoff_ms * 2^attempt, capped at max_backoff_ms), up to max_retries times;
//  - 401/403 throw ChatAuthError at once (retrying a bad key only burns time);
//  - other 4xx throw ChatHttpError with the server's error message;
//  - when retries are exhausted the last failure is thrown (ChatNetworkError / ChatHttpError).
// The API key comes from ChatClientOptions::api_key (the CLI fills it from OPENAI_API_KEY).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "safekey/net/chat_reply.h"
#include "safekey/util/error.h"
#include "safekey/util/json.h"

namespace safekey::net {

struct ChatMessage {
  std::string role;  // "system" | "user" | "assistant"
  std::string content;
};

struct ChatRequest {
  std::string model;
  std::vector<ChatMessage> messages;
  // A prompt rendered by the caller: sent as the "prompt" of /v1/completions instead of "messages"
  // (the reply's choices[0].text becomes ChatReply::content).
  std::string prompt;
  double temperature = 0.0;
  int64_t max_tokens = -1;  // -1 = not sent (server default)
  bool json_mode = false;   // sends response_format {"type":"json_object"}
  json extra = json::object();  // more top-level body fields (top_p, seed, repetition_penalty, ...)
};

struct ChatClientOptions {
  std::string endpoint;  // "http://host:port", "http://host:port/v1" or a full .../chat/completions URL
  std::string api_key;   // sent as "Authorization: Bearer <key>" when not empty
  int max_retries = 4;
  int initial_backoff_ms = 500;
  int max_backoff_ms = 16000;
  int connect_timeout_s = 10;
  int read_timeout_s = 120;
};

class ChatHttpError : public Error {
 public:
  ChatHttpError(const std::string& what, int status) : Error(what), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};
class ChatAuthError : public ChatHttpError {
 public:
  using ChatHttpError::ChatHttpError;
};
class ChatNetworkError : public Error {
 public:
  using Error::Error;
};

// The pieces of an endpoint URL. Throws Error for a URL it cannot use.
struct EndpointUrl {
  std::string scheme;  // "http" | "https"
  std::string host;
  int port = 80;
  std::string path;  // the full request path, e.g. "/v1/chat/completions"
};
EndpointUrl parse_endpoint(const std::string& endpoint, const std::string& api_path);

bool https_supported();

class ChatClient {
 public:
  explicit ChatClient(ChatClientOptions opts);
  // Thread-safe: every call opens its own connection.
  ChatReply complete(const ChatRequest& req) const;
  const ChatClientOptions& options() const { return opts_; }
  const EndpointUrl& url() const { return url_; }
  const EndpointUrl& completions_url() const { return completions_url_; }

 private:
  ChatClientOptions opts_;
  EndpointUrl url_, completions_url_;
};

// The request body the client sends (exposed for tests and logs).
json chat_request_body(const ChatRequest& req);

}  // namespace safekey::net
