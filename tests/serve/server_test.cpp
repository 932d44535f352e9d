// The server over real HTTP on loopback (httplib::Client), in-process with a tiny model: results
// equal the generator's, SSE streaming, every error case, auth, concurrent requests batched
// together, a client that disconnects mid-stream, and a drain on stop.
#include <gtest/gtest.h>

#include <atomic>
#include <httplib.h>

#include <thread>

#include "infer/tiny_model.h"
#include "safekey/infer/generator.h"
#include "safekey/model/adapter.h"
#include "safekey/serve/scheduler.h"
#include "safekey/serve/server.h"
#include "safekey/text/chat_template.h"
#include "safekey/text/tokenizer.h"

namespace safekey::serve {
namespace {

struct Sse {
  std::vector<json> chunks;
  bool done = false;
};
Sse parse_sse(const std::string& body) {
  Sse s;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t e = body.find("\n\n", pos);
    if (e == std::string::npos) break;
    std::string ev = body.substr(pos, e - pos);
    pos = e + 2;
    EXPECT_EQ(ev.rfind("data: ", 0), 0u) << ev;
    std::string data = ev.substr(6);
    if (data == "[DONE]") s.done = true;
    else s.chunks.push_back(json::parse(data));
  }
  EXPECT_EQ(pos, body.size()) << "trailing bytes in the event stream";
  return s;
}

class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!test::tiny_model_refs_present()) return;
    dir_ = new std::string(test::make_tiny_model("serve_tiny", 512));
    tok_ = new text::Tokenizer(text::Tokenizer::from_file(*dir_));
    chat_ = new text::ChatFormat(text::ChatFormat::from_path(*dir_));
  }
  void SetUp() override { SAFEKEY_REQUIRE_TINY_MODEL_REFS(); }
  void TearDown() override {
    if (server_) server_->stop();
  }
  void start(ServerOptions o = {}, int64_t batch = 8) {
    infer::GeneratorOptions go;
    go.max_batch_size = batch;
    gen_ = std::make_unique<infer::Generator>(model::load_model(*dir_), *tok_, chat_, go);
    o.port = 0;
    o.served_model_name = "tiny";
    o.limits.max_tokens_limit = 400;
    server_ = std::make_unique<Server>(*gen_, o);
    server_->start();
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_read_timeout(60);
  }
  httplib::Result post(const std::string& path, const json& body) {
    return client_->Post(path.c_str(), body.dump(), "application/json");
  }
  static json chat_body(const std::string& msg, int max_tokens, bool stream = false) {
    return {{"model", "tiny"}, {"messages", {{{"role", "user"}, {"content", msg}}}}, {"temperature", 0},
            {"max_tokens", max_tokens}, {"ignore_eos", true}, {"stream", stream}};
  }
  // The same request through the generator directly (another model copy; same weights).
  infer::Completion direct(const std::string& msg, int max_tokens) {
    infer::Generator g(model::load_model(*dir_), *tok_, chat_, {});
    infer::Request r;
    r.messages = {{"user", msg}};
    infer::SamplingParams p;
    p.max_new_tokens = max_tokens;
    p.ignore_eos = true;
    return g.generate({r}, p)[0];
  }

  static std::string* dir_;
  static text::Tokenizer* tok_;
  static text::ChatFormat* chat_;
  std::unique_ptr<infer::Generator> gen_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<httplib::Client> client_;
};
std::string* ServerTest::dir_ = nullptr;
text::Tokenizer* ServerTest::tok_ = nullptr;
text::ChatFormat* ServerTest::chat_ = nullptr;

TEST_F(ServerTest, ModelsAndHealth) {
  start();
  auto r = client_->Get("/v1/models");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  json j = json::parse(r->body);
  EXPECT_EQ(j["object"], "list");
  EXPECT_EQ(j["data"][0]["id"], "tiny");
  EXPECT_EQ(j["data"][0]["max_model_len"], 512);
  auto h = client_->Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->body, "ok");
}

TEST_F(ServerTest, ChatEqualsTheGeneratorAndStreamsTheSameText) {
  start();
  auto want = direct("Tell me about tea.", 20);
  auto r = post("/v1/chat/completions", chat_body("Tell me about tea.", 20));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["model"], "tiny");
  auto split = split_reasoning(want.text);
  const json& msg = j["choices"][0]["message"];
  EXPECT_EQ(msg["role"], "assistant");
  EXPECT_EQ(msg["reasoning_content"], split.reasoning ? json(*split.reasoning) : json());
  EXPECT_EQ(msg["content"], split.content ? json(*split.content) : json());
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["usage"]["completion_tokens"], 20);
  EXPECT_EQ(j["usage"]["prompt_tokens"], want.prompt_tokens);

  json sb = chat_body("Tell me about tea.", 20, true);
  sb["stream_options"] = {{"include_usage", true}};
  auto s = post("/v1/chat/completions", sb);
  ASSERT_TRUE(s);
  ASSERT_EQ(s->status, 200);
  EXPECT_NE(s->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
  Sse ev = parse_sse(s->body);
  EXPECT_TRUE(ev.done);
  ASSERT_GE(ev.chunks.size(), 3u);
  EXPECT_EQ(ev.chunks[0]["choices"][0]["delta"]["role"], "assistant");
  std::string reasoning, content;
  std::string finish;
  for (const auto& c : ev.chunks) {
    EXPECT_EQ(c["id"], ev.chunks[0]["id"]);
    if (c["choices"].empty()) {
      EXPECT_EQ(c["usage"]["completion_tokens"], 20);  // the usage chunk
      continue;
    }
    const json& d = c["choices"][0]["delta"];
    if (d.contains("reasoning_content")) reasoning += d["reasoning_content"].get<std::string>();
    if (d.contains("content")) content += d["content"].get<std::string>();
    if (!c["choices"][0]["finish_reason"].is_null()) finish = c["choices"][0]["finish_reason"];
  }
  EXPECT_EQ(finish, "length");
  EXPECT_EQ(reasoning, split.reasoning.value_or(""));
  EXPECT_EQ(content, split.content.value_or(""));
}

TEST_F(ServerTest, CompletionsRawPromptAndTokenIds) {
  start();
  infer::Generator g(model::load_model(*dir_), *tok_, chat_, {});
  infer::Request req;
  req.prompt = "The capital of France is";
  infer::SamplingParams p;
  p.max_new_tokens = 12;
  p.ignore_eos = true;
  auto want = g.generate({req}, p)[0];
  json body = {{"prompt", "The capital of France is"}, {"max_tokens", 12}, {"temperature", 0}, {"ignore_eos", true}};
  auto r = post("/v1/completions", body);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["choices"][0]["text"], want.text);
  // Token ids give the same result.
  auto ids = tok_->encode_ids("The capital of France is", false);
  body["prompt"] = ids;
  auto r2 = post("/v1/completions", body);
  ASSERT_TRUE(r2);
  EXPECT_EQ(json::parse(r2->body)["choices"][0]["text"], want.text);
  // Streamed.
  body["stream"] = true;
  auto r3 = post("/v1/completions", body);
  ASSERT_TRUE(r3);
  Sse ev = parse_sse(r3->body);
  std::string text;
  for (const auto& c : ev.chunks) text += c["choices"][0]["text"].get<std::string>();
  EXPECT_TRUE(ev.done);
  EXPECT_EQ(text, want.text);
}

void expect_error(const httplib::Result& r, int status, const std::string& code) {
  ASSERT_TRUE(r) << "no response";
  EXPECT_EQ(r->status, status) << r->body;
  json j = json::parse(r->body, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << "error body is not JSON: " << r->body;
  ASSERT_TRUE(j.contains("error")) << r->body;
  EXPECT_TRUE(j["error"]["message"].is_string());
  EXPECT_TRUE(j["error"]["type"].is_string());
  EXPECT_EQ(j["error"]["code"], code) << r->body;
}

TEST_F(ServerTest, BadRequestsGetJsonErrors) {
  ServerOptions o;
  o.max_body_bytes = 4096;
  start(o);
  expect_error(client_->Post("/v1/chat/completions", "{oops", "application/json"), 400, "invalid_json");
  expect_error(post("/v1/chat/completions", {{"model", "tiny"}}), 400, "missing_field");
  expect_error(post("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", 3}}}}}), 400, "invalid_type");
  json m = chat_body("x", 5);
  m["model"] = "gpt-4o";
  expect_error(post("/v1/chat/completions", m), 404, "model_not_found");
  json t = chat_body("x", 5);
  t["temperature"] = "hot";
  expect_error(post("/v1/chat/completions", t), 400, "invalid_type");
  expect_error(post("/v1/chat/completions", chat_body("x", 401)), 400, "invalid_value");
  expect_error(client_->Post("/v1/chat/completions", std::string(5000, ' '), "application/json"), 413,
               "body_too_large");
  // A prompt that leaves no room for max_tokens in the 512-token context.
  std::string long_msg;
  for (int i = 0; i < 150; ++i) long_msg += "token" + std::to_string(i) + " ";
  expect_error(post("/v1/chat/completions", chat_body(long_msg.substr(0, 3000), 300)), 400, "context_length_exceeded");
  expect_error(post("/v1/completions", {{"prompt", {1, 2, 99999999}}}), 400, "invalid_prompt");
  expect_error(client_->Get("/v1/nothing"), 404, "not_found");
  // The server still answers after all that.
  auto ok = post("/v1/chat/completions", chat_body("x", 3));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST_F(ServerTest, ApiKey) {
  ServerOptions o;
  o.api_key = "sekret";
  start(o);
  expect_error(post("/v1/chat/completions", chat_body("x", 3)), 401, "invalid_api_key");
  expect_error(client_->Get("/v1/models"), 401, "invalid_api_key");
  client_->set_bearer_token_auth("sekret");
  auto r = post("/v1/chat/completions", chat_body("x", 3));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
}

TEST_F(ServerTest, ConcurrentRequestsShareABatchAndMatchSequentialResults) {
  start();
  const int n = 8;
  std::vector<std::string> msgs;
  for (int i = 0; i < n; ++i) msgs.push_back("Question number " + std::to_string(i) + std::string(i, '?'));
  std::vector<json> got(n);
  std::vector<std::thread> th;
  for (int i = 0; i < n; ++i)
    th.emplace_back([&, i] {
      httplib::Client c("127.0.0.1", server_->port());
      c.set_read_timeout(120);
      auto r = c.Post("/v1/chat/completions", chat_body(msgs[i], 40).dump(), "application/json");
      if (r && r->status == 200) got[i] = json::parse(r->body)["choices"][0]["message"];
    });
  for (auto& t : th) t.join();
  EXPECT_GE(server_->stats().max_running, 2) << "concurrent requests were never decoded together";
  for (int i = 0; i < n; ++i) {
    auto want = direct(msgs[i], 40);
    auto split = split_reasoning(want.text);
    EXPECT_EQ(got[i].value("reasoning_content", json()), split.reasoning ? json(*split.reasoning) : json())
        << "request " << i;
    EXPECT_EQ(got[i].value("content", json()), split.content ? json(*split.content) : json()) << "request " << i;
  }
}

TEST_F(ServerTest, ClientDisconnectMidStreamCancelsTheRequest) {
  start();
  {
    httplib::Client c("127.0.0.1", server_->port());
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/chat/completions";
    req.body = chat_body("A long answer please", 390, true).dump();
    req.set_header("Content-Type", "application/json");
    int chunks = 0;
    req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) { return ++chunks < 2; };
    auto r = c.send(req);  // the receiver stops after two chunks: the client closes the connection
    EXPECT_GE(chunks, 2);
  }
  // The cancelled request leaves the batch long before its 390 tokens.
  for (int i = 0; i < 200 && (server_->stats().running > 0 || server_->stats().requests_done < 1); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto st = server_->stats();
  EXPECT_EQ(st.running, 0);
  EXPECT_EQ(st.requests_done, 1);
  EXPECT_LT(st.tokens_generated, 390);
  auto ok = post("/v1/chat/completions", chat_body("still there?", 4));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

// One sequence slot and --max-waiting 1: while one request decodes and one waits, a third is
// refused with a JSON 503 `overloaded` and Retry-After; the other two are answered.
// Catches: an unbounded queue despite the limit, a refusal that is not JSON or not 503, a limit that
// counts the running request as waiting (the second request would be refused).
TEST_F(ServerTest, MaxWaitingRefusesWith503) {
  ServerOptions o;
  o.max_waiting = 1;
  start(o, /*batch=*/1);
  std::atomic<bool> first_chunk{false};
  int status_a = 0, status_b = 0;
  std::thread a([&] {
    httplib::Client c("127.0.0.1", server_->port());
    c.set_read_timeout(120);
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/chat/completions";
    req.body = chat_body("A long answer please", 390, true).dump();
    req.set_header("Content-Type", "application/json");
    req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) {
      first_chunk = true;
      return true;
    };
    auto r = c.send(req);
    if (r) status_a = r->status;
  });
  for (int i = 0; i < 400 && !first_chunk; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  ASSERT_TRUE(first_chunk) << "the first request never started streaming";
  // The role chunk comes before the first token: wait until the request holds the slot.
  for (int i = 0; i < 400 && server_->stats().running < 1; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::thread b([&] {
    httplib::Client c("127.0.0.1", server_->port());
    c.set_read_timeout(120);
    auto r = c.Post("/v1/chat/completions", chat_body("Then me", 20).dump(), "application/json");
    if (r) status_b = r->status;
  });
  for (int i = 0; i < 400 && server_->stats().waiting < 1; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(server_->stats().running, 1);
  auto r = post("/v1/chat/completions", chat_body("And me", 3));
  expect_error(r, 503, "overloaded");
  if (r) EXPECT_EQ(r->get_header_value("Retry-After"), "1");
  a.join();
  b.join();
  EXPECT_EQ(status_a, 200);
  EXPECT_EQ(status_b, 200);
}

TEST_F(ServerTest, StopDrainsRunningRequests) {
  ServerOptions o;
  o.drain_ms = 30000;
  start(o);
  int status = 0;
  json body;
  std::thread t([&] {
    httplib::Client c("127.0.0.1", server_->port());
    c.set_read_timeout(60);
    auto r = c.Post("/v1/chat/completions", chat_body("finish me", 60).dump(), "application/json");
    if (r) {
      status = r->status;
      body = json::parse(r->body, nullptr, false);
    }
  });
  for (int i = 0; i < 200 && server_->stats().running == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  server_->stop();
  t.join();
  EXPECT_EQ(status, 200);
  EXPECT_EQ(body["choices"][0]["finish_reason"], "length");  // finished, not cut
  httplib::Client c("127.0.0.1", server_->port());
  c.set_connection_timeout(2);
  EXPECT_FALSE(c.Get("/health")) << "the server still accepts connections after stop()";
}

}  // namespace
}  // namespace safekey::serve

namespace safekey::serve {
namespace {

// An adapter with random B on every attention and MLP projection of a model sharing `base`'s weights.
model::DecoderModel lora_model(model::DecoderModel& base, uint64_t seed) {
  auto m = model::share_weights(base);
  model::add_lora(m, [](const std::string& p) { return p != "lm_head"; }, {4, 2.0, 0.0}, seed);
  torch::manual_seed(static_cast<int64_t>(seed));
  torch::NoGradGuard ng;
  for (auto& [name, p] : model::lora_parameters(m))
    if (name.find(".lora_B.") != std::string::npos) p.normal_(0.0, 0.5);
  m->eval();
  return m;
}

// Catches: a request routed to the wrong adapter (or every request to the base), a LoRA module that
// copies or changes the base's weights, and /v1/models without the modules.
TEST_F(ServerTest, LoraModulesAreChosenByTheModelField) {
  auto base = model::load_model(*dir_);
  ServerOptions o;
  std::map<std::string, std::string> want;
  for (const std::string name : {"safe", "other"}) {
    ServerOptions::LoraModule lm{name, "in-process/" + name, lora_model(base, name == "safe" ? 1 : 2)};
    // Shared, not copied: the module's embedding is the base's storage.
    EXPECT_EQ(lm.model->hf_named_parameters()[0].second.data_ptr(), base->hf_named_parameters()[0].second.data_ptr());
    infer::Generator g(lm.model, *tok_, chat_, {});  // run before the server owns the model
    infer::Request r;
    r.prompt = "The capital of France is";
    infer::SamplingParams p;
    p.max_new_tokens = 10;
    p.ignore_eos = true;
    want[name] = g.generate({r}, p)[0].text;
    o.lora_modules.push_back(std::move(lm));
  }
  start(o);
  auto models = json::parse(client_->Get("/v1/models")->body);
  ASSERT_EQ(models["data"].size(), 3u);
  EXPECT_EQ(models["data"][1]["id"], "safe");
  EXPECT_EQ(models["data"][1]["parent"], "tiny");
  json body = {{"prompt", "The capital of France is"}, {"max_tokens", 10}, {"temperature", 0}, {"ignore_eos", true}};
  std::map<std::string, std::string> got;
  for (const std::string name : {"tiny", "safe", "other"}) {
    body["model"] = name;
    auto r = post("/v1/completions", body);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const json j = json::parse(r->body);
    EXPECT_EQ(j["model"], name);
    got[name] = j["choices"][0]["text"].get<std::string>();
  }
  EXPECT_EQ(got["safe"], want["safe"]);
  EXPECT_EQ(got["other"], want["other"]);
  EXPECT_NE(got["safe"], got["tiny"]) << "the adapter changed nothing";
  EXPECT_NE(got["safe"], got["other"]);
  body["model"] = "missing";
  auto r = post("/v1/completions", body);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_NE(r->body.find("`safe`"), std::string::npos) << r->body;
}

}  // namespace
}  // namespace safekey::serve
