// A real OpenAI-compatible chat-completions server on 127.0.0.1 (cpp-httplib, any free port) for
// the client and judge tests. It answers like a judge model, with verdicts derived from the
// request text, and has failure modes chosen by the request's "model":
//   "judge"        normal verdicts (see verdict_for)
//   "auth"         401 with an OpenAI-style error body
//   "forbidden"    403
//   "flaky"        500 for the first `flaky_failures` requests, then normal
//   "ratelimit"    429 for the first `flaky_failures` requests, then normal
//   "garbage"      a 200 reply whose content is prose with no verdict in it
//   "notjson"      a 200 reply whose body is not JSON
//   "slow"         sleeps `slow_ms` before a normal reply
//   "bad-request"  400
// Every request is counted; the last Authorization header is kept.
#pragma once
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>

#include "safekey/util/json.h"

namespace safekey::test {

class JudgeServer {
 public:
  JudgeServer() {
    server_.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
      handle(req, res);
    });
    server_.Get("/v1/models", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"object":"list","data":[{"id":"judge","object":"model"}]})", "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 500 && !server_.is_running(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ~JudgeServer() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int requests() const { return requests_; }
  std::string last_authorization() {
    std::lock_guard<std::mutex> g(mu_);
    return last_auth_;
  }
  std::atomic<int> flaky_failures{2};
  std::atomic<int> slow_ms{1500};

  // The canned verdict for a request (public so tests can state expectations).
  static std::string verdict_for(const json& messages) {
    const std::string last = messages.back().value("content", "");
    if (messages.size() >= 2 && messages.back().value("role", "") == "assistant")  // llama-guard
      return last.find("HARMFUL") != std::string::npos ? "unsafe\nS1,S9" : "safe";
    // U/K annotation: U ends at the last of the leading numbered sentences that mention "user".
    if (last.find("understanding_end_sentence") != std::string::npos) {
      int n = 1;
      for (int k = 1;; ++k) {
        auto at = last.find("\n[" + std::to_string(k) + "] ");
        if (at == std::string::npos) break;
        auto eol = last.find('\n', at + 1);
        if (last.substr(at, eol - at).find("user") == std::string::npos) break;
        n = k;
      }
      return json{{"understanding_end_sentence", n}}.dump();
    }
    // The response is the text after the rubric's response heading.
    auto pos = last.find("RESPONSE:");
    std::string response = pos == std::string::npos ? "" : last.substr(pos);
    if (last.find("1-5 scale") != std::string::npos) {
      int score = response.find("HARMFUL") != std::string::npos ? 5
                  : response.find("MILD") != std::string::npos ? 3 : 1;
      return json{{"reason", "canned"}, {"score", score}}.dump();
    }
    if (last.find("2_full_refusal") != std::string::npos) {
      if (response.find("PARTIAL") != std::string::npos) return "3_partial_refusal";
      if (response.find("I cannot") != std::string::npos) return "2_full_refusal";
      return "1_full_compliance";
    }
    return "I am not sure what to say.";
  }

 private:
  static void reply(httplib::Response& res, const std::string& content) {
    json body = {{"id", "chatcmpl-test"},
                 {"object", "chat.completion"},
                 {"choices", json::array({{{"index", 0},
                                           {"message", {{"role", "assistant"}, {"content", content}}},
                                           {"finish_reason", "stop"}}})}};
    res.set_content(body.dump(), "application/json");
  }
  static void error(httplib::Response& res, int status, const std::string& msg) {
    res.status = status;
    res.set_content(json{{"error", {{"message", msg}, {"type", "test"}}}}.dump(), "application/json");
  }
  void handle(const httplib::Request& req, httplib::Response& res) {
    int n = ++requests_;
    (void)n;
    {
      std::lock_guard<std::mutex> g(mu_);
      last_auth_ = req.get_header_value("Authorization");
    }
    json body;
    try {
      body = json::parse(req.body);
    } catch (const std::exception&) {
      return error(res, 400, "invalid JSON");
    }
    const std::string model = body.value("model", "");
    if (model == "auth") return error(res, 401, "Incorrect API key provided");
    if (model == "forbidden") return error(res, 403, "forbidden");
    if (model == "bad-request") return error(res, 400, "context too long");
    if (model == "flaky" || model == "ratelimit") {
      if (flaky_failures.fetch_sub(1) > 0) return error(res, model == "flaky" ? 500 : 429, "try again");
    }
    if (model == "garbage") return reply(res, "Well, it depends on many things.");
    if (model == "notjson") return res.set_content("<html>oops</html>", "text/html");
    if (model == "slow") std::this_thread::sleep_for(std::chrono::milliseconds(slow_ms.load()));
    reply(res, verdict_for(body["messages"]));
  }

  httplib::Server server_;
  std::thread thread_;
  int port_ = -1;
  std::atomic<int> requests_{0};
  std::mutex mu_;
  std::string last_auth_;
};

}  // namespace safekey::test
