// `safekey serve` under load (ctest label `load`): the real binary with --api-key and a tiny model,
// 40 clients x 5 requests x 2 rounds of the bench_serve_load mix (bench/serve_load.h: chat,
// streams, completions, streams closed after their first chunk, malformed requests), on loopback.
//
// Catches a server that
//   - answers malformed input (bad JSON, missing messages, wrong model or key, oversize max_tokens,
//     a wrong type, an unknown route) with a 5xx, a 200 or an error that is not JSON;
//   - serves any route but /health (/metrics, /v1/models, unknown paths) without the key;
//   - keeps decoding a stream whose client went away (its 3000 tokens keep running > 0 after the
//     round, and the aborted counter stays behind the closed streams);
//   - grows its RSS per request (more than 64 MiB from round 1 to round 2, i.e. > 160 KiB per
//   request);
//   - hangs (every wait is bounded; the whole run has a 100 s deadline) or exits non-zero on
//   SIGTERM.
// A second test runs the same client against a fake server that answers 500 and never drains, to
// show the checks fail when they should.
#include "bench/serve_load.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include "infer/tiny_model.h"

namespace safekey {
namespace {

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += "\n  " + x;
  return s;
}

TEST(ServeLoad, ManyClientsMixedRequestsAgainstTheRealServer) {
  SAFEKEY_REQUIRE_TINY_MODEL_REFS();
  const std::string dir = test::make_tiny_model("serve_load", 4096);
  load::ServerChild child = load::start_server(
      test::safekey_exe(), {"serve", "--model", dir, "--port", "0", "--api-key", "load-key",
                            "--served-model-name", "tiny", "--threads", "1", "--workers", "64"});
  ASSERT_GT(child.port, 0) << "no 'serving ... on http://HOST:PORT' line from safekey serve";
  load::LoadOptions o;
  o.port = child.port;
  o.server_pid = child.pid;
  o.api_key = "load-key";
  o.model = "tiny";
  o.clients = 40;
  o.requests = 5;
  o.rounds = 2;
  o.max_tokens = 8;
  o.cancel_max_tokens = 3000;
  o.deadline_s = 100;
  o.drain_bound_s = 10;
  o.rss_tolerance_mib = 64;
  o.seed = 3;
  const load::LoadReport rep = load::run_load(o);
  const int exit_code = load::stop_server(child);
  load::print_report(o, rep);
  EXPECT_TRUE(rep.failures.empty()) << joined(rep.failures);
  EXPECT_EQ(exit_code, 0) << "safekey serve on SIGTERM";
  // The mix exercised every part: valid, malformed, closed streams, the key on every route.
  ASSERT_EQ(rep.rounds.size(), 2u);
  EXPECT_EQ(rep.rounds[0].requests, 200);
  EXPECT_GT(rep.malformed_total, 40);
  EXPECT_GT(rep.rounds[0].closed + rep.rounds[1].closed, 20);
  EXPECT_GE(rep.auth_checked, 18);
  EXPECT_GT(rep.rounds[1].tokens, 0);
  EXPECT_GE(rep.rounds[1].aborted, rep.rounds[1].closed)
      << "/metrics has no safekey_request_aborted_total?";
}

// A wrong server: 500 on everything but /metrics, which reports one request running forever.
TEST(ServeLoad, TheChecksFailAgainstABrokenServer) {
  httplib::Server fake;
  fake.Get("/metrics", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("safekey_num_requests_running 1\nsafekey_num_requests_waiting 0\n",
                    "text/plain");
  });
  fake.Post(".*", [](const httplib::Request&, httplib::Response& res) {
    res.status = 500;
    res.set_content("oops", "text/plain");
  });
  const int port = fake.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  std::thread t([&] { fake.listen_after_bind(); });
  load::LoadOptions o;
  o.port = port;
  o.model = "tiny";
  o.clients = 4;
  o.requests = 5;
  o.rounds = 1;
  o.drain_bound_s = 0.5;
  o.deadline_s = 30;
  const load::LoadReport rep = load::run_load(o);
  fake.stop();
  t.join();
  const std::string all = joined(rep.failures);
  EXPECT_GT(rep.responses_5xx, 0);
  EXPECT_NE(all.find("5xx"), std::string::npos) << all;
  EXPECT_NE(all.find("did not reach 0"), std::string::npos) << all;
  EXPECT_NE(all.find("valid requests not answered well"), std::string::npos) << all;
}

}  // namespace
}  // namespace safekey
