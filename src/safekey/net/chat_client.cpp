#include "safekey/net/chat_client.h"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <thread>

namespace safekey::net {

bool https_supported() {
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
  return true;
#else
  return false;
#endif
}

EndpointUrl parse_endpoint(const std::string& endpoint, const std::string& api_path) {
  EndpointUrl u;
  std::string rest = endpoint;
  auto sep = rest.find("://");
  SK_CHECK(sep != std::string::npos, "endpoint '", endpoint,
           "': expected a URL such as http://127.0.0.1:8000 or https://api.openai.com/v1");
  u.scheme = rest.substr(0, sep);
  std::transform(u.scheme.begin(), u.scheme.end(), u.scheme.begin(), ::tolower);
  SK_CHECK(u.scheme == "http" || u.scheme == "https", "endpoint '", endpoint,
           "': scheme must be http or https");
  SK_CHECK(u.scheme == "http" || https_supported(), "endpoint '", endpoint,
           "': https is not available (cpp-httplib was built without OpenSSL)");
  rest = rest.substr(sep + 3);
  auto slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  std::string path = slash == std::string::npos ? "" : rest.substr(slash);
  SK_CHECK(!hostport.empty(), "endpoint '", endpoint, "': missing host");
  u.port = u.scheme == "https" ? 443 : 80;
  auto colon = hostport.rfind(':');
  if (colon != std::string::npos && hostport.find(']') == std::string::npos) {
    std::string p = hostport.substr(colon + 1);
    SK_CHECK(!p.empty() && p.size() <= 5 && std::all_of(p.begin(), p.end(), ::isdigit),
             "endpoint '", endpoint, "': bad port '", p, "'");
    u.port = std::stoi(p);
    SK_CHECK(u.port > 0 && u.port < 65536, "endpoint '", endpoint, "': bad port ", u.port);
    hostport = hostport.substr(0, colon);
  }
  u.host = hostport;
  SK_CHECK(!u.host.empty(), "endpoint '", endpoint, "': missing host");
  while (!path.empty() && path.back() == '/') path.pop_back();
  // ".../chat/completions" is used as is; ".../v1" gets the API path without its "/v1" prefix;
  // anything else (including "") gets the whole API path ("/v1/chat/completions").
  auto ends_with = [](const std::string& s, const std::string& t) {
    return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
  };
  std::string tail = api_path.substr(api_path.find('/', 1));  // "/chat/completions"
  if (ends_with(path, tail)) {
    u.path = path;
  } else if (ends_with(path, "/v1")) {
    u.path = path + tail;
  } else {
    u.path = path + api_path;
  }
  return u;
}

json chat_request_body(const ChatRequest& req) {
  json body = {{"model", req.model}, {"temperature", req.temperature}};
  if (!req.prompt.empty()) {
    body["prompt"] = req.prompt;
  } else {
    json msgs = json::array();
    for (const auto& m : req.messages) msgs.push_back({{"role", m.role}, {"content", m.content}});
    body["messages"] = std::move(msgs);
  }
  if (req.max_tokens > 0) body["max_tokens"] = req.max_tokens;
  if (req.json_mode) body["response_format"] = {{"type", "json_object"}};
  for (auto it = req.extra.begin(); it != req.extra.end(); ++it) body[it.key()] = it.value();
  return body;
}

ChatClient::ChatClient(ChatClientOptions opts)
    : opts_(std::move(opts)), url_(parse_endpoint(opts_.endpoint, "/v1/chat/completions")) {
  // The completions path beside the chat one: ".../chat/completions" given in full becomes
  // ".../completions".
  completions_url_ = url_;
  const std::string chat_tail = "/chat/completions";
  if (url_.path.size() >= chat_tail.size() &&
      url_.path.compare(url_.path.size() - chat_tail.size(), chat_tail.size(), chat_tail) == 0)
    completions_url_.path = url_.path.substr(0, url_.path.size() - chat_tail.size()) + "/completions";
}

ChatReply ChatClient::complete(const ChatRequest& req) const {
  const bool raw = !req.prompt.empty();
  const EndpointUrl& u = raw ? completions_url_ : url_;
  const std::string where = cat(u.scheme, "://", u.host, ":", u.port, u.path);
  const std::string body = chat_request_body(req).dump();
  httplib::Headers headers;
  if (!opts_.api_key.empty()) headers.emplace("Authorization", "Bearer " + opts_.api_key);
  std::string last_failure;
  bool last_was_network = false;
  int last_status = 0;
  for (int attempt = 0; attempt <= opts_.max_retries; ++attempt) {
    if (attempt > 0) {
      int64_t wait_ms = std::min<int64_t>(int64_t(opts_.initial_backoff_ms) << (attempt - 1),
                                          opts_.max_backoff_ms);
      std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
    }
    httplib::Client cli(cat(u.scheme, "://", u.host, ":", u.port));
    cli.set_connection_timeout(opts_.connect_timeout_s, 0);
    cli.set_read_timeout(opts_.read_timeout_s, 0);
    cli.set_write_timeout(opts_.read_timeout_s, 0);
    auto res = cli.Post(u.path, headers, body, "application/json");
    if (!res) {
      last_was_network = true;
      last_failure = cat(where, ": ", httplib::to_string(res.error()),
                         " (is the server running and reachable?)");
      continue;
    }
    const int status = res->status;
    if (status == 401 || status == 403) {
      throw ChatAuthError(cat(where, ": HTTP ", status, " authentication failed: ",
                              server_error_message(res->body),
                              " (check OPENAI_API_KEY / --api-key for this endpoint)"),
                          status);
    }
    if (status == 429 || status >= 500) {
      last_was_network = false;
      last_status = status;
      last_failure = cat(where, ": HTTP ", status, ": ", server_error_message(res->body));
      continue;
    }
    if (status != 200) {
      throw ChatHttpError(cat(where, ": HTTP ", status, ": ", server_error_message(res->body)), status);
    }
    ChatReply reply;
    try {
      reply = parse_chat_reply(res->body, raw, where);
    } catch (const Error& e) {
      throw ChatHttpError(e.what(), status);
    }
    reply.attempts = attempt + 1;
    return reply;
  }
  std::string msg = cat(last_failure, " (gave up after ", opts_.max_retries + 1, " attempts)");
  if (last_was_network) throw ChatNetworkError(msg);
  throw ChatHttpError(msg, last_status);
}

}  // namespace safekey::net
