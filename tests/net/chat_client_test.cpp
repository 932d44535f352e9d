// The chat-completions client against a real HTTP server on loopback (judge_server.h).
#include "safekey/net/chat_client.h"

#include <gtest/gtest.h>

#include "net/judge_server.h"

namespace safekey::net {
namespace {

ChatRequest request(const std::string& model, const std::string& text = "hello") {
  ChatRequest r;
  r.model = model;
  r.messages.push_back({"user", text});
  return r;
}

ChatClientOptions fast(const std::string& url) {
  ChatClientOptions o;
  o.endpoint = url;
  o.initial_backoff_ms = 10;
  o.max_backoff_ms = 40;
  o.max_retries = 3;
  o.read_timeout_s = 5;
  return o;
}

TEST(ParseEndpoint, AcceptsTheUsualSpellings) {
  auto u = parse_endpoint("http://127.0.0.1:8000", "/v1/chat/completions");
  EXPECT_EQ(u.scheme, "http");
  EXPECT_EQ(u.host, "127.0.0.1");
  EXPECT_EQ(u.port, 8000);
  EXPECT_EQ(u.path, "/v1/chat/completions");
  EXPECT_EQ(parse_endpoint("http://localhost:8000/v1/", "/v1/chat/completions").path, "/v1/chat/completions");
  EXPECT_EQ(parse_endpoint("http://h/openai/v1", "/v1/chat/completions").path, "/openai/v1/chat/completions");
  EXPECT_EQ(parse_endpoint("http://h:1/x/chat/completions", "/v1/chat/completions").path, "/x/chat/completions");
  EXPECT_EQ(parse_endpoint("http://h", "/v1/chat/completions").port, 80);
  if (https_supported()) {
    EXPECT_EQ(parse_endpoint("https://api.openai.com/v1", "/v1/chat/completions").port, 443);
  }
}

TEST(ParseEndpoint, RejectsBadUrls) {
  EXPECT_THROW(parse_endpoint("127.0.0.1:8000", "/v1/chat/completions"), Error);
  EXPECT_THROW(parse_endpoint("ftp://h", "/v1/chat/completions"), Error);
  EXPECT_THROW(parse_endpoint("http://h:abc", "/v1/chat/completions"), Error);
  EXPECT_THROW(parse_endpoint("http://:80", "/v1/chat/completions"), Error);
}

TEST(ChatClient, RoundTripSendsTheKeyAndReadsTheContent) {
  test::JudgeServer server;
  auto o = fast(server.url() + "/v1");
  o.api_key = "sk-test";
  ChatClient client(o);
  ChatRequest r = request("judge", "Reply on the 1-5 scale. RESPONSE: HARMFUL stuff");
  ChatReply reply = client.complete(r);
  EXPECT_EQ(json::parse(reply.content)["score"], 5);
  EXPECT_EQ(reply.attempts, 1);
  EXPECT_EQ(reply.finish_reason, "stop");
  EXPECT_EQ(server.last_authorization(), "Bearer sk-test");
  EXPECT_EQ(server.requests(), 1);
}

TEST(ChatClient, AuthFailureIsNotRetried) {
  test::JudgeServer server;
  ChatClient client(fast(server.url()));
  try {
    client.complete(request("auth"));
    FAIL() << "expected ChatAuthError";
  } catch (const ChatAuthError& e) {
    EXPECT_EQ(e.status(), 401);
    EXPECT_NE(std::string(e.what()).find("Incorrect API key"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("OPENAI_API_KEY"), std::string::npos) << e.what();
  }
  EXPECT_THROW(client.complete(request("forbidden")), ChatAuthError);
  EXPECT_EQ(server.requests(), 2);
}

TEST(ChatClient, ServerErrorsAreRetriedWithBackoff) {
  test::JudgeServer server;
  server.flaky_failures = 2;
  ChatClient client(fast(server.url()));
  ChatReply reply = client.complete(request("flaky"));
  EXPECT_EQ(reply.attempts, 3);
  EXPECT_EQ(server.requests(), 3);
  server.flaky_failures = 1;
  EXPECT_EQ(client.complete(request("ratelimit")).attempts, 2);
}

TEST(ChatClient, GivesUpAfterTheRetryBudget) {
  test::JudgeServer server;
  server.flaky_failures = 100;
  auto o = fast(server.url());
  o.max_retries = 2;
  ChatClient client(o);
  try {
    client.complete(request("flaky"));
    FAIL() << "expected ChatHttpError";
  } catch (const ChatHttpError& e) {
    EXPECT_EQ(e.status(), 500);
    EXPECT_NE(std::string(e.what()).find("3 attempts"), std::string::npos) << e.what();
  }
  EXPECT_EQ(server.requests(), 3);
}

TEST(ChatClient, OtherClientErrorsAndNonJsonBodiesFailAtOnce) {
  test::JudgeServer server;
  ChatClient client(fast(server.url()));
  try {
    client.complete(request("bad-request"));
    FAIL();
  } catch (const ChatHttpError& e) {
    EXPECT_EQ(e.status(), 400);
    EXPECT_NE(std::string(e.what()).find("context too long"), std::string::npos);
  }
  EXPECT_THROW(client.complete(request("notjson")), ChatHttpError);
  EXPECT_EQ(server.requests(), 2);
}

TEST(ChatClient, UnreachableEndpointIsANetworkError) {
  int port;
  {
    test::JudgeServer gone;
    port = gone.port();
  }
  auto o = fast("http://127.0.0.1:" + std::to_string(port));
  o.max_retries = 1;
  ChatClient client(o);
  try {
    client.complete(request("judge"));
    FAIL() << "expected ChatNetworkError";
  } catch (const ChatNetworkError& e) {
    EXPECT_NE(std::string(e.what()).find("reachable"), std::string::npos) << e.what();
  }
}

TEST(ChatClient, SlowReplyTimesOut) {
  test::JudgeServer server;
  server.slow_ms = 2500;
  auto o = fast(server.url());
  o.read_timeout_s = 1;
  o.max_retries = 0;
  ChatClient client(o);
  EXPECT_THROW(client.complete(request("slow")), ChatNetworkError);
}

TEST(ChatClient, RequestBodyHasTheOpenAiFields) {
  ChatRequest r = request("m", "hi");
  r.max_tokens = 7;
  r.json_mode = true;
  json b = chat_request_body(r);
  EXPECT_EQ(b["model"], "m");
  EXPECT_EQ(b["temperature"], 0.0);
  EXPECT_EQ(b["max_tokens"], 7);
  EXPECT_EQ(b["messages"][0]["role"], "user");
  EXPECT_EQ(b["response_format"]["type"], "json_object");
}


// A raw prompt goes to the completions path beside the chat one and its reply's choices[0].text is
// read. Catches a raw prompt sent to /chat/completions (404 here), sent as "messages", or a reply
// read from choices[0].message (empty content).
TEST(ChatClient, RawPromptGoesToCompletionsAndReadsTheText) {
  httplib::Server server;
  std::atomic<int> chat_calls{0};
  for (const char* path : {"/v1/completions", "/x/completions"})
    server.Post(path, [path](const httplib::Request& req, httplib::Response& res) {
      const json b = json::parse(req.body);
      const std::string body = json({{"choices", {{{"text", std::string(path) + " got " + b.at("prompt").get<std::string>() +
                                                                 (b.contains("messages") ? " and messages" : "")},
                                                   {"finish_reason", "length"}}}}})
                                   .dump();
      res.set_content(body, "application/json");
    });
  server.Post("/v1/chat/completions", [&](const httplib::Request&, httplib::Response& res) {
    ++chat_calls;
    res.set_content(R"({"choices":[{"message":{"content":"chat"},"finish_reason":"stop"}]})", "application/json");
  });
  const int port = server.bind_to_any_port("127.0.0.1");
  std::thread t([&] { server.listen_after_bind(); });
  for (int i = 0; i < 500 && !server.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  const std::string url = "http://127.0.0.1:" + std::to_string(port);

  ChatRequest r = request("m", "ignored");
  r.prompt = "<|User|>hi<|Assistant|><think>\n Sure";
  EXPECT_EQ(chat_request_body(r)["prompt"], r.prompt);
  EXPECT_FALSE(chat_request_body(r).contains("messages"));
  ChatReply a = ChatClient(fast(url + "/v1")).complete(r);
  EXPECT_EQ(a.content, "/v1/completions got " + r.prompt);
  EXPECT_EQ(a.finish_reason, "length");
  ChatReply b = ChatClient(fast(url + "/x/chat/completions")).complete(r);
  EXPECT_EQ(b.content, "/x/completions got " + r.prompt);
  EXPECT_EQ(ChatClient(fast(url)).complete(request("m")).content, "chat");
  EXPECT_EQ(chat_calls.load(), 1);
  server.stop();
  t.join();
}

}  // namespace
}  // namespace safekey::net

namespace safekey::net {

// A 200 reply whose body is JSON but not an object once escaped as nlohmann's type_error (value()
// on an array), not the project's error; every malformed body is now one Error naming the problem.
TEST(ChatReplyParser, MalformedBodiesAreErrors) {
  for (const char* body : {"[1, 2]", "3", "null", "{\"choices\": {}}", "{\"choices\": [3]}",
                           "{\"choices\": [{\"message\": 3}]}", "not json"}) {
    try {
      (void)parse_chat_reply(body, false, "srv");
      ADD_FAILURE() << body << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("srv: reply"), std::string::npos) << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << body << " escaped as " << e.what();
    }
  }
  const auto r = parse_chat_reply("{\"choices\": [{\"text\": \"abc\", \"finish_reason\": \"length\"}]}", true, "srv");
  EXPECT_EQ(r.content, "abc");
  EXPECT_EQ(r.finish_reason, "length");
  EXPECT_THROW(parse_chat_reply("{\"choices\": [{\"text\": 5}]}", true, "srv"), Error);
  EXPECT_EQ(parse_chat_reply("{\"choices\": [{\"finish_reason\": \"stop\"}]}", false, "srv").content, "");
  EXPECT_EQ(server_error_message("{\"error\": {\"message\": \"bad key\"}}"), "bad key");
  EXPECT_EQ(server_error_message("[\"error\"]"), "[\"error\"]");
}

}  // namespace safekey::net
