// GET /metrics: the Prometheus text of the scheduler's counters, behind the API key. Catches a
// counter that misses cancelled requests (a closed stream must show as aborted, not as a success),
// a gauge left above 0 after the batch emptied, and /metrics readable without the key.
#include <gtest/gtest.h>
#include <httplib.h>

#include <thread>

#include "infer/tiny_model.h"
#include "safekey/infer/generator.h"
#include "safekey/serve/scheduler.h"
#include "safekey/serve/server.h"
#include "safekey/text/chat_template.h"
#include "safekey/text/tokenizer.h"

namespace safekey::serve {
namespace {

// "name value" lines of the exposition.
std::map<std::string, int64_t> values(const std::string& text) {
  std::map<std::string, int64_t> m;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t e = text.find('\n', pos);
    std::string line = text.substr(pos, e - pos);
    pos = e == std::string::npos ? text.size() : e + 1;
    if (line.empty() || line[0] == '#') continue;
    m[line.substr(0, line.find(' '))] = std::stoll(line.substr(line.find(' ') + 1));
  }
  return m;
}

TEST(Metrics, PrometheusTextOfTheStats) {
  SchedulerStats st;
  st.running = 3;
  st.waiting = 2;
  st.max_running = 7;
  st.requests_done = 10;
  st.requests_aborted = 4;
  st.tokens_generated = 123;
  const std::string t = metrics_text(st);
  EXPECT_NE(t.find("# TYPE safekey_num_requests_running gauge\nsafekey_num_requests_running 3\n"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("# TYPE safekey_request_success_total counter\n"), std::string::npos) << t;
  auto v = values(t);
  EXPECT_EQ(v["safekey_num_requests_waiting"], 2);
  EXPECT_EQ(v["safekey_num_requests_running_max"], 7);
  EXPECT_EQ(v["safekey_request_success_total"], 6);
  EXPECT_EQ(v["safekey_request_aborted_total"], 4);
  EXPECT_EQ(v["safekey_generation_tokens_total"], 123);
}

TEST(Metrics, ServedBehindTheKeyAndCountAClosedStreamAsAborted) {
  SAFEKEY_REQUIRE_TINY_MODEL_REFS();
  const std::string dir = test::make_tiny_model("serve_metrics", 512);
  auto tok = text::Tokenizer::from_file(dir);
  auto chat = text::ChatFormat::from_path(dir);
  infer::Generator gen(model::load_model(dir), tok, &chat, {});
  ServerOptions o;
  o.port = 0;
  o.served_model_name = "tiny";
  o.api_key = "k";
  Server server(gen, o);
  server.start();
  httplib::Client c("127.0.0.1", server.port());
  c.set_read_timeout(60);
  auto no_key = c.Get("/metrics");
  ASSERT_TRUE(no_key);
  EXPECT_EQ(no_key->status, 401);
  c.set_bearer_token_auth("k");
  auto body = [](int n, bool stream) {
    return json{{"model", "tiny"},
                {"messages", {{{"role", "user"}, {"content", "hi"}}}},
                {"max_tokens", n},
                {"ignore_eos", true},
                {"stream", stream}}
        .dump();
  };
  auto ok = c.Post("/v1/chat/completions", body(5, false), "application/json");
  ASSERT_TRUE(ok);
  ASSERT_EQ(ok->status, 200);
  {  // a stream closed after its first chunk
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/chat/completions";
    req.body = body(450, true);
    req.set_header("Content-Type", "application/json");
    req.set_header("Authorization", "Bearer k");
    req.content_receiver = [](const char*, size_t, uint64_t, uint64_t) { return false; };
    c.send(req);
  }
  std::map<std::string, int64_t> v;
  for (int i = 0; i < 200; ++i) {
    auto m = c.Get("/metrics");
    ASSERT_TRUE(m);
    ASSERT_EQ(m->status, 200);
    EXPECT_NE(m->get_header_value("Content-Type").find("text/plain"), std::string::npos);
    v = values(m->body);
    if (v["safekey_num_requests_running"] == 0 && v["safekey_request_aborted_total"] == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(v["safekey_num_requests_running"], 0);
  EXPECT_EQ(v["safekey_num_requests_waiting"], 0);
  EXPECT_EQ(v["safekey_request_success_total"], 1);
  EXPECT_EQ(v["safekey_request_aborted_total"], 1);
  EXPECT_GE(v["safekey_generation_tokens_total"], 5);
  EXPECT_LT(v["safekey_generation_tokens_total"], 455);
  server.stop();
}

}  // namespace
}  // namespace safekey::serve
