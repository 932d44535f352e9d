// A load client for `safekey serve` (docs/server.md, "Under load"), shared by bench_serve_load and
// the ctest label `load` (tests/serve/serve_load.cpp).
//
// N clients, each on its own thread, send M requests each over loopback, in R rounds. Each
// request's kind is drawn from a seed (per client, so a run repeats exactly): chat, streamed chat,
// completion, a stream the client closes after its first chunk, or a malformed request. The client
// checks every answer, then reports figures (requests/s, tokens/s, p50/p99 latency and time to
// first token, the server's RSS) and the failures of these checks:
//   - no 5xx at all; every valid request answered 200 with a well-formed body (streams end with
//     `data: [DONE]`, no error event); every malformed one rejected with the expected 4xx and a
//     JSON `error` object;
//   - with an API key: every route but /health refuses a missing or wrong key (401, JSON error);
//   - the closed streams cancel their sequences: after each round the server's running and waiting
//     counts (GET /metrics) reach 0 within a bound, and its aborted counter grew by the number of
//     closed streams (they ask for thousands of tokens, so only a cancel ends them in time);
//   - RSS after the last round exceeds RSS after the first by at most a tolerance;
//   - everything ends before a global deadline.
// The checks of single bodies are in serve_load_checks.h; the server as a child process in
// serve_process.h.
#pragma once
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "safekey/util/error.h"
#include "safekey/util/json.h"
#include "serve_load_checks.h"
#include "serve_process.h"

namespace safekey::load {

using Clock = std::chrono::steady_clock;

struct LoadOptions {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string api_key;   // the server's --api-key ("" = the server has none)
  std::string model;     // the served model name
  pid_t server_pid = 0;  // > 0: read its RSS from /proc/PID/status
  int clients = 200, requests = 50, rounds = 2;
  int max_tokens = 16;           // valid requests ask for 1..max_tokens
  int cancel_max_tokens = 3000;  // closed streams ask for this many (only a cancel ends them soon)
  uint64_t seed = 1;
  double deadline_s = 900;  // from `start`, for everything; after it the run stops and fails
  Clock::time_point start = Clock::now();
  double request_timeout_s = 300;  // one request's read timeout
  double drain_bound_s = 10;       // running + waiting must reach 0 this soon after a round
  double rss_tolerance_mib = 64;   // allowed RSS growth from the first round to the last
};

enum class Kind {
  Chat,
  ChatStream,
  Completion,
  CompletionStream,
  Cancel,
  BadJson,
  MissingMessages,
  WrongModel,
  NoKey,
  WrongKey,
  OversizeMaxTokens,
  BadType,
  UnknownRoute
};
inline const char* kind_name(Kind k) {
  static const char* names[] = {
      "chat",          "chat stream",   "completion",          "completion stream",
      "closed stream", "bad json",      "missing messages",    "wrong model",
      "no api key",    "wrong api key", "oversize max_tokens", "bad type",
      "unknown route"};
  return names[static_cast<int>(k)];
}
inline bool is_malformed(Kind k) { return k >= Kind::BadJson; }
inline bool is_stream(Kind k) {
  return k == Kind::ChatStream || k == Kind::CompletionStream || k == Kind::Cancel;
}

// One request's outcome.
struct Sample {
  Kind kind = Kind::Chat;
  int status = 0;  // 0 = no response
  double latency_s = 0, ttft_s = -1;
  int64_t tokens = 0;   // completion tokens (usage)
  std::string problem;  // empty = as expected
};

struct RoundFigures {
  int requests = 0, valid = 0, malformed = 0, closed = 0;
  double wall_s = 0, requests_per_s = 0, tokens_per_s = 0;
  int64_t tokens = 0;
  double ttft_p50 = 0, ttft_p99 = 0, latency_p50 = 0, latency_p99 = 0;
  double rss_before_mib = 0, rss_after_mib = 0, hwm_before_mib = 0,
         hwm_after_mib = 0;  // VmRSS, VmHWM
  double drain_s = -1;       // time until running + waiting = 0 after the round (-1: never)
  int64_t aborted = -1;      // growth of safekey_request_aborted_total (-1: no metric)
};

struct LoadReport {
  std::vector<RoundFigures> rounds;
  int auth_checked = 0, auth_failed = 0;
  int responses_5xx = 0, valid_ok = 0, valid_total = 0, malformed_ok = 0, malformed_total = 0;
  bool deadline_hit = false;
  std::vector<std::string> failures;    // empty = every check passed
  std::map<std::string, int> problems;  // problem text -> count (first few kinds of trouble)
};

// ---- one client --------------------------------------------------------------------------------

class LoadClient {
 public:
  explicit LoadClient(const LoadOptions& o) : o_(o) {}

  // A request of `kind`, sent and checked.
  Sample run(Kind kind, int client, int k, uint64_t& rng, Clock::time_point deadline) {
    Sample s;
    s.kind = kind;
    httplib::Client cl(o_.host, o_.port);
    const double left = std::chrono::duration<double>(deadline - Clock::now()).count();
    const double read_s = std::max(1.0, std::min(o_.request_timeout_s, left));
    cl.set_connection_timeout(10);
    cl.set_read_timeout(static_cast<time_t>(read_s));
    cl.set_write_timeout(30);
    httplib::Headers h;
    if (!o_.api_key.empty() && kind != Kind::NoKey)
      h.emplace("Authorization",
                "Bearer " + (kind == Kind::WrongKey ? o_.api_key + "-wrong" : o_.api_key));
    const bool chat = kind != Kind::Completion && kind != Kind::CompletionStream;
    const int max_tokens = kind == Kind::Cancel
                               ? o_.cancel_max_tokens
                               : 1 + static_cast<int>(splitmix(rng) % o_.max_tokens);
    json body = {{"model", o_.model}, {"max_tokens", max_tokens}, {"ignore_eos", true}};
    const std::string text =
        cat("Client ", client, " asks question ", k, ": what is ", splitmix(rng) % 1000, "?");
    if (chat)
      body["messages"] = {{{"role", "user"}, {"content", text}}};
    else
      body["prompt"] = text;
    if (splitmix(rng) % 2)
      body["temperature"] = 0;
    else
      body["temperature"] = 0.8, body["seed"] = static_cast<int64_t>(splitmix(rng) % 100000);
    if (is_stream(kind)) body["stream"] = true, body["stream_options"] = {{"include_usage", true}};
    std::string path = chat ? "/v1/chat/completions" : "/v1/completions", payload;
    switch (kind) {
      case Kind::BadJson:
        payload = body.dump().substr(0, 20);
        break;
      case Kind::MissingMessages:
        body.erase("messages");
        break;
      case Kind::WrongModel:
        body["model"] = o_.model + "-no-such-model";
        break;
      case Kind::OversizeMaxTokens:
        body["max_tokens"] = 1000000000;
        break;
      case Kind::BadType:
        body["temperature"] = "hot";
        break;
      case Kind::UnknownRoute:
        path = "/v1/embeddings";
        break;
      default:
        break;
    }
    if (payload.empty()) payload = body.dump();
    const auto t0 = Clock::now();
    auto secs = [&] { return std::chrono::duration<double>(Clock::now() - t0).count(); };

    if (!is_stream(kind)) {
      auto r = cl.Post(path.c_str(), h, payload, "application/json");
      s.latency_s = secs();
      if (!r) return fail(s, cat("no response (", httplib::to_string(r.error()), ")"));
      s.status = r->status;
      if (is_malformed(kind)) return check_rejected(s, r->body);
      if (r->status != 200) return fail(s, cat("HTTP ", r->status, ": ", r->body.substr(0, 160)));
      json j = json::parse(r->body, nullptr, false);
      if (j.is_discarded()) return fail(s, "body is not JSON");
      if (j.value("object", "") != (chat ? "chat.completion" : "text_completion"))
        return fail(s, "wrong object");
      if (!j.contains("choices") || !j["choices"].is_array() || j["choices"].size() != 1)
        return fail(s, "choices");
      const json& c = j["choices"][0];
      if (!c.contains("finish_reason") || !c["finish_reason"].is_string() ||
          (c["finish_reason"] != "stop" && c["finish_reason"] != "length"))
        return fail(s, "finish_reason");
      if (chat ? !(c.contains("message") && c["message"].value("role", "") == "assistant")
               : !c["text"].is_string())
        return fail(s, chat ? "message" : "text");
      s.tokens = j.contains("usage") ? j["usage"].value("completion_tokens", int64_t{0}) : 0;
      if (s.tokens < 1 || s.tokens > max_tokens)
        return fail(s, cat("usage.completion_tokens ", s.tokens));
      return s;
    }

    // Streams: the status comes with the headers; the body is read chunk by chunk.
    httplib::Request req;
    req.method = "POST";
    req.path = path;
    req.headers = h;
    req.set_header("Content-Type", "application/json");
    req.body = payload;
    std::string got;
    size_t scanned = 0;
    int chunks = 0;
    req.response_handler = [&](const httplib::Response& r) {
      s.status = r.status;
      return true;
    };
    req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
      got.append(data, n);
      ++chunks;
      for (size_t e; s.ttft_s < 0 && (e = got.find("\n\n", scanned)) != std::string::npos;
           scanned = e + 2)
        if (event_has_text(got.substr(scanned, e - scanned))) s.ttft_s = secs();
      return !(kind == Kind::Cancel &&
               s.status == 200);  // a closed stream: hang up after the first chunk
    };
    auto r = cl.send(req);
    s.latency_s = secs();
    if (kind == Kind::Cancel) {
      if (s.status != 200 || chunks < 1)
        return fail(s, cat("HTTP ", s.status, ", ", chunks, " chunks"));
      s.ttft_s = -1;  // it hung up before any text; not a time to first token
      return s;
    }
    if (!r) {
      if (s.status >= 500) return fail(s, cat("HTTP ", s.status));
      return fail(s, cat("no response (", httplib::to_string(r.error()), ")"));
    }
    if (s.status != 200) return fail(s, cat("HTTP ", s.status, ": ", got.substr(0, 160)));
    if (r->get_header_value("Content-Type").find("text/event-stream") == std::string::npos)
      return fail(s, "stream without text/event-stream");
    std::string bad = check_stream(got, chat, &s.tokens);
    if (!bad.empty()) return fail(s, bad);
    if (s.tokens < 1 || s.tokens > max_tokens)
      return fail(s, cat("stream usage.completion_tokens ", s.tokens));
    if (s.ttft_s < 0)
      s.ttft_s = s.latency_s;  // no text event (all held back): the end is the first token
    return s;
  }

  // One GET or POST with or without the key (auth checks, /metrics).
  httplib::Result call(const std::string& method, const std::string& path, const std::string& key) {
    httplib::Client cl(o_.host, o_.port);
    cl.set_connection_timeout(10);
    cl.set_read_timeout(60);
    httplib::Headers h;
    if (!key.empty()) h.emplace("Authorization", "Bearer " + key);
    if (method == "GET") return cl.Get(path.c_str(), h);
    return cl.Post(path.c_str(), h,
                   cat("{\"model\": \"", o_.model, "\", \"prompt\": \"hi\", \"max_tokens\": 1}"),
                   "application/json");
  }

  std::map<std::string, double> metrics() {
    auto r = call("GET", "/metrics", o_.api_key);
    if (!r || r->status != 200) return {};
    return parse_metrics(r->body);
  }

 private:
  static Sample& fail(Sample& s, const std::string& why) {
    s.problem = cat(kind_name(s.kind), ": ", why);
    return s;
  }
  Sample& check_rejected(Sample& s, const std::string& body) {
    int want = 400;
    if (s.kind == Kind::WrongModel || s.kind == Kind::UnknownRoute) want = 404;
    if (s.kind == Kind::NoKey || s.kind == Kind::WrongKey) want = 401;
    if (s.status != want)
      return fail(s, cat("HTTP ", s.status, " (expected ", want, "): ", body.substr(0, 160)));
    if (!is_json_error(body))
      return fail(s, "rejected without a JSON error object: " + body.substr(0, 160));
    return s;
  }
  const LoadOptions& o_;
};

// ---- the run
// -------------------------------------------------------------------------------------

// The kind of request k of a client: ~30% chat, 15% chat stream, 15% completion, 10% completion
// stream, 10% closed stream, 20% malformed (the key kinds only when the server has a key).
inline Kind draw_kind(uint64_t& rng, bool have_key) {
  const int r = static_cast<int>(splitmix(rng) % 100);
  if (r < 30) return Kind::Chat;
  if (r < 45) return Kind::ChatStream;
  if (r < 60) return Kind::Completion;
  if (r < 70) return Kind::CompletionStream;
  if (r < 80) return Kind::Cancel;
  std::vector<Kind> bad = {Kind::BadJson,           Kind::MissingMessages, Kind::WrongModel,
                           Kind::OversizeMaxTokens, Kind::BadType,         Kind::UnknownRoute};
  if (have_key) bad.push_back(Kind::NoKey), bad.push_back(Kind::WrongKey);
  return bad[splitmix(rng) % bad.size()];
}

// With a key: every route but /health answers 401 + a JSON error without it and with a wrong one.
inline void check_auth(LoadClient& lc, const LoadOptions& o, LoadReport& rep) {
  if (o.api_key.empty()) return;
  const std::vector<std::pair<std::string, std::string>> routes = {{"GET", "/v1/models"},
                                                                   {"POST", "/v1/chat/completions"},
                                                                   {"POST", "/v1/completions"},
                                                                   {"GET", "/metrics"},
                                                                   {"GET", "/"},
                                                                   {"GET", "/no/such/route"},
                                                                   {"POST", "/v1/embeddings"},
                                                                   {"GET", "/v1/chat/completions"}};
  for (const auto& [method, path] : routes)
    for (const std::string& key : {std::string(), o.api_key + "x"}) {
      rep.auth_checked++;
      auto r = lc.call(method, path, key);
      if (r && r->status == 401 && is_json_error(r->body)) continue;
      rep.auth_failed++;
      rep.failures.push_back(cat("api key not enforced: ", method, " ", path,
                                 key.empty() ? " without a key" : " with a wrong key", " -> ",
                                 r ? std::to_string(r->status) : "no response"));
    }
  rep.auth_checked++;
  auto h = lc.call("GET", "/health", "");
  if (!h || h->status != 200) {
    rep.auth_failed++;
    rep.failures.push_back(
        cat("GET /health without a key -> ", h ? std::to_string(h->status) : "no response"));
  }
  rep.auth_checked++;
  auto m = lc.call("GET", "/metrics", o.api_key);
  if (!m || m->status != 200 || m->body.find("safekey_num_requests_running") == std::string::npos) {
    rep.auth_failed++;
    rep.failures.push_back("GET /metrics with the key: no safekey_num_requests_running");
  }
}

inline LoadReport run_load(const LoadOptions& o, std::FILE* log = stdout) {
  LoadReport rep;
  const auto deadline =
      o.start + std::chrono::milliseconds(static_cast<int64_t>(o.deadline_s * 1000));
  LoadClient lc(o);
  check_auth(lc, o, rep);
  for (int round = 0; round < o.rounds && !rep.deadline_hit; ++round) {
    RoundFigures f;
    auto m0 = lc.metrics();
    if (o.server_pid > 0) {
      f.rss_before_mib = mib_from_status(o.server_pid, "VmRSS:");
      f.hwm_before_mib = mib_from_status(o.server_pid, "VmHWM:");
    }
    std::vector<std::vector<Sample>> per_client(o.clients);
    std::atomic<bool> late{false};
    const auto t0 = Clock::now();
    std::vector<std::thread> th;
    for (int c = 0; c < o.clients; ++c)
      th.emplace_back([&, c] {
        uint64_t rng =
            o.seed * 1000003ULL + static_cast<uint64_t>(round) * 7919ULL + static_cast<uint64_t>(c);
        for (int k = 0; k < o.requests; ++k) {
          if (Clock::now() >= deadline) {
            late = true;
            return;
          }
          per_client[c].push_back(lc.run(draw_kind(rng, !o.api_key.empty()), c, k, rng, deadline));
        }
      });
    for (auto& t : th) t.join();
    f.wall_s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (late) rep.deadline_hit = true;
    // The closed streams must leave the batch: running + waiting reach 0 soon.
    const auto d0 = Clock::now();
    for (;;) {
      auto m = lc.metrics();
      if (m.count("safekey_request_aborted_total") && m0.count("safekey_request_aborted_total"))
        f.aborted = static_cast<int64_t>(m["safekey_request_aborted_total"] -
                                         m0["safekey_request_aborted_total"]);
      if (!m.empty() && m["safekey_num_requests_running"] == 0 &&
          m["safekey_num_requests_waiting"] == 0) {
        f.drain_s = std::chrono::duration<double>(Clock::now() - d0).count();
        break;
      }
      if (Clock::now() - d0 >
          std::chrono::milliseconds(static_cast<int64_t>(o.drain_bound_s * 1000)))
        break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (o.server_pid > 0) {
      f.rss_after_mib = mib_from_status(o.server_pid, "VmRSS:");
      f.hwm_after_mib = mib_from_status(o.server_pid, "VmHWM:");
    }
    std::vector<double> ttft, lat;
    for (const auto& samples : per_client)
      for (const auto& s : samples) {
        f.requests++;
        if (s.status >= 500) rep.responses_5xx++;
        if (!s.problem.empty() && rep.problems[s.problem]++ == 0 && rep.problems.size() <= 10)
          std::fprintf(log, "  problem: %s\n", s.problem.c_str());
        if (is_malformed(s.kind)) {
          f.malformed++, rep.malformed_total++;
          rep.malformed_ok += s.problem.empty();
          continue;
        }
        if (s.kind == Kind::Cancel) f.closed++;
        f.valid++, rep.valid_total++;
        rep.valid_ok += s.problem.empty();
        if (!s.problem.empty() || s.kind == Kind::Cancel) continue;
        f.tokens += s.tokens;
        lat.push_back(s.latency_s);
        if (s.ttft_s >= 0) ttft.push_back(s.ttft_s);
      }
    f.requests_per_s = f.requests / f.wall_s;
    f.tokens_per_s = f.tokens / f.wall_s;
    f.ttft_p50 = percentile(ttft, 50), f.ttft_p99 = percentile(ttft, 99);
    f.latency_p50 = percentile(lat, 50), f.latency_p99 = percentile(lat, 99);
    if (f.drain_s < 0)
      rep.failures.push_back(cat("round ", round + 1, ": running + waiting did not reach 0 within ",
                                 o.drain_bound_s,
                                 " s after the clients finished (cancelled sequences leak?)"));
    if (f.aborted >= 0 && f.aborted < f.closed)
      rep.failures.push_back(cat("round ", round + 1, ": ", f.closed,
                                 " streams closed by their clients, but only ", f.aborted,
                                 " requests aborted"));
    std::fprintf(log, "round %d: %d requests in %.1f s (%.1f req/s, %.0f generated tok/s)",
                 round + 1, f.requests, f.wall_s, f.requests_per_s, f.tokens_per_s);
    if (o.server_pid > 0)
      std::fprintf(log, ", server RSS %.1f -> %.1f MiB", f.rss_before_mib, f.rss_after_mib);
    std::fprintf(log, "\n");
    std::fflush(log);
    rep.rounds.push_back(f);
  }
  if (rep.responses_5xx)
    rep.failures.push_back(cat(rep.responses_5xx, " responses with a 5xx status"));
  if (rep.valid_ok != rep.valid_total)
    rep.failures.push_back(cat(rep.valid_total - rep.valid_ok, " of ", rep.valid_total,
                               " valid requests not answered well"));
  if (rep.malformed_ok != rep.malformed_total)
    rep.failures.push_back(
        cat(rep.malformed_total - rep.malformed_ok, " of ", rep.malformed_total,
            " malformed requests not rejected with the expected 4xx + JSON error"));
  if (o.server_pid > 0 && rep.rounds.size() >= 2) {
    const double growth = rep.rounds.back().rss_after_mib - rep.rounds.front().rss_after_mib;
    if (growth > o.rss_tolerance_mib)
      rep.failures.push_back(cat("RSS grew by ", growth, " MiB from round 1 to round ",
                                 rep.rounds.size(), " (tolerance ", o.rss_tolerance_mib, " MiB)"));
  }
  if (rep.deadline_hit)
    rep.failures.push_back(
        cat("the deadline (", o.deadline_s, " s) passed before the load finished"));
  return rep;
}

// The figures and checks as a table.
inline void print_report(const LoadOptions& o, const LoadReport& rep, std::FILE* out = stdout) {
  std::fprintf(out,
               "\n| round | requests | valid / malformed / closed | wall s | req/s | gen tok/s | "
               "TTFT p50 / p99 ms "
               "| latency p50 / p99 ms | RSS before / after MiB | peak RSS before / after MiB | "
               "drain s | aborted |\n");
  std::fprintf(out, "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (size_t i = 0; i < rep.rounds.size(); ++i) {
    const auto& f = rep.rounds[i];
    std::fprintf(out,
                 "| %zu | %d | %d / %d / %d | %.1f | %.1f | %.0f | %.0f / %.0f | %.0f / %.0f | "
                 "%.1f / %.1f | %.1f / %.1f | %.2f | %lld |\n",
                 i + 1, f.requests, f.valid, f.malformed, f.closed, f.wall_s, f.requests_per_s,
                 f.tokens_per_s, f.ttft_p50 * 1e3, f.ttft_p99 * 1e3, f.latency_p50 * 1e3,
                 f.latency_p99 * 1e3, f.rss_before_mib, f.rss_after_mib, f.hwm_before_mib,
                 f.hwm_after_mib, f.drain_s, static_cast<long long>(f.aborted));
  }
  auto row = [&](const std::string& check, const std::string& value, bool ok) {
    std::fprintf(out, "| %-44s | %-28s | %s |\n", check.c_str(), value.c_str(), ok ? "ok" : "FAIL");
  };
  std::fprintf(out, "\n| check | value | |\n|---|---|---|\n");
  row("responses with 5xx", std::to_string(rep.responses_5xx), rep.responses_5xx == 0);
  row("valid requests: 200, well-formed", cat(rep.valid_ok, " / ", rep.valid_total),
      rep.valid_ok == rep.valid_total);
  row("malformed: expected 4xx + JSON error", cat(rep.malformed_ok, " / ", rep.malformed_total),
      rep.malformed_ok == rep.malformed_total);
  row("api key on every route but /health",
      o.api_key.empty() ? "not checked (no key)"
                        : cat(rep.auth_checked - rep.auth_failed, " / ", rep.auth_checked),
      rep.auth_failed == 0);
  bool drained = true, aborted = true;
  std::string drains, aborts;
  for (const auto& f : rep.rounds) {
    drained &= f.drain_s >= 0;
    aborted &= f.aborted < 0 || f.aborted >= f.closed;
    char d[32];
    std::snprintf(d, sizeof d, "%.2f s", f.drain_s);
    drains +=
        cat(drains.empty() ? "" : ", ", f.drain_s < 0 ? std::string("never") : std::string(d));
    aborts += cat(aborts.empty() ? "" : ", ", f.aborted, "/", f.closed);
  }
  row(cat("running+waiting -> 0 within ", o.drain_bound_s, " s"), drains, drained);
  row("closed streams aborted (metrics)", aborts, aborted);
  if (o.server_pid > 0 && rep.rounds.size() >= 2) {
    const double g = rep.rounds.back().rss_after_mib - rep.rounds.front().rss_after_mib;
    char v[64];
    std::snprintf(v, sizeof v, "%+.1f MiB", g);
    row(cat("RSS growth round 1 -> ", rep.rounds.size(), " (tol ", o.rss_tolerance_mib, " MiB)"), v,
        g <= o.rss_tolerance_mib);
  }
  row(cat("finished before the deadline (", o.deadline_s, " s)"), rep.deadline_hit ? "no" : "yes",
      !rep.deadline_hit);
  for (const auto& f : rep.failures) std::fprintf(out, "FAIL: %s\n", f.c_str());
  std::fflush(out);
}

}  // namespace safekey::load
