#include "safekey/serve/server.h"

#include <httplib.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <chrono>
#include <csignal>
#include <ctime>
#include <random>
#include <thread>

#include "safekey/serve/scheduler.h"
#include "safekey/util/error.h"

namespace safekey::serve {

namespace {

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(dump(error_body(e)), "application/json");
}

ApiError make_error(int status, const std::string& type, const std::string& code,
                    const std::string& msg) {
  ApiError e;
  e.status = status;
  e.type = type;
  e.code = code;
  e.message = msg;
  return e;
}

std::string random_id(const char* prefix) {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return std::string(prefix) + buf;
}

std::string sse(const json& j) { return "data: " + dump(j) + "\n\n"; }

// Everything a streaming response needs after the handler returned.
struct StreamState {
  Endpoint ep;
  std::shared_ptr<Job> job;
  std::string id, model;
  int64_t created = 0;
  bool include_usage = false, reasoning_parser = true;
  bool sent_role = false, finished = false;
  ReasoningStream reasoning;
  std::chrono::steady_clock::time_point deadline;
};

// Chunks for newly streamed text.
std::string text_chunks(StreamState& s, const std::string& text) {
  if (text.empty()) return "";
  if (s.ep == Endpoint::Completion) return sse(completion_chunk(s.id, s.created, s.model, text, nullptr));
  std::string out;
  if (!s.reasoning_parser) return sse(chat_chunk(s.id, s.created, s.model, {{"content", text}}, nullptr));
  std::string r, c;
  s.reasoning.push(text, &r, &c);
  if (!r.empty()) out += sse(chat_chunk(s.id, s.created, s.model, {{"reasoning_content", r}}, nullptr));
  if (!c.empty()) out += sse(chat_chunk(s.id, s.created, s.model, {{"content", c}}, nullptr));
  return out;
}

std::string final_chunks(StreamState& s) {
  std::string out;
  const Job& job = *s.job;
  if (!job.error.empty()) {
    out += sse(error_body(make_error(500, "server_error", "generation_failed", job.error)));
    return out + "data: [DONE]\n\n";
  }
  if (s.ep == Endpoint::Chat && s.reasoning_parser) {
    std::string r, c;
    s.reasoning.finish(&r, &c);
    if (!r.empty()) out += sse(chat_chunk(s.id, s.created, s.model, {{"reasoning_content", r}}, nullptr));
    if (!c.empty()) out += sse(chat_chunk(s.id, s.created, s.model, {{"content", c}}, nullptr));
  }
  const std::string& reason = job.result.finish_reason;
  if (s.ep == Endpoint::Chat)
    out += sse(chat_chunk(s.id, s.created, s.model, json::object(), reason));
  else
    out += sse(completion_chunk(s.id, s.created, s.model, "", reason));
  if (s.include_usage) {
    json u = {{"id", s.id},
              {"object", s.ep == Endpoint::Chat ? "chat.completion.chunk" : "text_completion"},
              {"created", s.created},
              {"model", s.model},
              {"choices", json::array()},
              {"usage", usage_json(job.result)}};
    out += sse(u);
  }
  return out + "data: [DONE]\n\n";
}

// cpp-httplib listens with a backlog of 5 (a compile-time constant; Debian ships it built into a
// shared library, so it cannot be raised with the macro). A burst of concurrent clients overflows
// that queue and the kernel drops connections (measured with bench_serve: a few of 32 simultaneous
// first requests failed). listen() on a listening socket only changes its backlog, so find the
// socket bound to our port and widen it.
void widen_listen_backlog(int port, int backlog) {
  rlimit lim{};
  const int max_fd = getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < 65536 ? static_cast<int>(lim.rlim_cur) : 65536;
  for (int fd = 0; fd < max_fd; ++fd) {
    int accepting = 0;
    socklen_t len = sizeof accepting;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) != 0 || !accepting) continue;
    sockaddr_storage addr{};
    socklen_t alen = sizeof addr;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &alen) != 0) continue;
    int p = -1;
    if (addr.ss_family == AF_INET) p = ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
    if (addr.ss_family == AF_INET6) p = ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
    if (p == port) ::listen(fd, backlog);
  }
}

}  // namespace

std::string metrics_text(const SchedulerStats& st) {
  std::string out;
  auto metric = [&](const char* name, const char* type, const char* help, int64_t value) {
    out += cat("# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n", name, " ", value, "\n");
  };
  metric("safekey_num_requests_running", "gauge", "Requests in the running batch.", st.running);
  metric("safekey_num_requests_waiting", "gauge", "Requests waiting for a place in the batch.", st.waiting);
  metric("safekey_num_requests_running_max", "gauge", "Largest batch decoded so far.", st.max_running);
  metric("safekey_request_success_total", "counter", "Requests that finished with stop or length.",
         st.requests_done - st.requests_aborted);
  metric("safekey_request_aborted_total", "counter",
         "Requests cancelled before the end (client disconnect, timeout, shutdown).", st.requests_aborted);
  metric("safekey_generation_tokens_total", "counter", "Tokens generated, all requests.", st.tokens_generated);
  return out;
}

Server::Server(infer::Generator& gen, ServerOptions opts) : gen_(gen), opts_(std::move(opts)) {}

Server::~Server() { stop(); }

void Server::start() {
  SK_CHECK(!running_, "server: already started");
  std::signal(SIGPIPE, SIG_IGN);  // a client that went away must not kill the process
  sched_ = std::make_unique<Scheduler>(gen_.model(), gen_.engine_options());
  for (const auto& lm : opts_.lora_modules) {
    SK_CHECK(lm.name != opts_.served_model_name && !lora_scheds_.count(lm.name), "serve: the model name '", lm.name,
             "' is used twice (--served-model-name and --lora-modules names must differ)");
    // A decode observer (the key-sentence guard) belongs to the base model: its safety head was
    // trained with it, and it keeps per-sequence state for one engine.
    infer::EngineOptions eo = gen_.engine_options();
    eo.hook = nullptr;
    eo.on_finish = nullptr;
    lora_scheds_[lm.name] = std::make_unique<Scheduler>(lm.model, std::move(eo));
  }
  http_ = std::make_unique<httplib::Server>();
  int workers = opts_.worker_threads;
  http_->new_task_queue = [workers] { return new httplib::ThreadPool(static_cast<size_t>(workers)); };
  http_->set_payload_max_length(opts_.max_body_bytes);
  http_->set_read_timeout(30);
  http_->set_write_timeout(30);
  routes();
  if (opts_.port == 0) {
    port_ = http_->bind_to_any_port(opts_.host);
  } else {
    port_ = http_->bind_to_port(opts_.host, opts_.port) ? opts_.port : -1;
  }
  if (port_ <= 0) {
    sched_->stop(0);
    for (auto& [n, s] : lora_scheds_) s->stop(0);
    fail("serve: cannot listen on ", opts_.host, ":", opts_.port,
         " (address in use, or not an address of this machine)");
  }
  widen_listen_backlog(port_, 1024);
  running_ = true;
  listen_thread_ = std::thread([this] { http_->listen_after_bind(); });
  // stop() before the listener runs would be lost (httplib sets is_running inside listen), so wait.
  for (int i = 0; i < 500 && !http_->is_running(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

void Server::stop() {
  if (!running_.exchange(false)) return;
  draining_ = true;
  sched_->stop(opts_.drain_ms);  // running requests finish (or are cancelled at the deadline)
  for (auto& [n, s] : lora_scheds_) s->stop(opts_.drain_ms);
  http_->stop();
  if (listen_thread_.joinable()) listen_thread_.join();
}

SchedulerStats Server::stats() const {
  SchedulerStats total = sched_ ? sched_->stats() : SchedulerStats{};
  for (const auto& [n, s] : lora_scheds_) {
    const auto st = s->stats();
    total.running += st.running;
    total.waiting += st.waiting;
    total.max_running = std::max(total.max_running, st.max_running);
    total.requests_done += st.requests_done;
    total.tokens_generated += st.tokens_generated;
    total.requests_aborted += st.requests_aborted;
  }
  return total;
}

void Server::routes() {
  auto& svr = *http_;
  const std::string model = opts_.served_model_name;
  std::vector<std::string> served = {model};
  for (const auto& lm : opts_.lora_modules) served.push_back(lm.name);

  svr.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (opts_.api_key.empty() || req.path == "/health") return httplib::Server::HandlerResponse::Unhandled;
    if (req.get_header_value("Authorization") == "Bearer " + opts_.api_key)
      return httplib::Server::HandlerResponse::Unhandled;
    send_error(res, make_error(401, "authentication_error", "invalid_api_key",
                               "missing or wrong API key (send 'Authorization: Bearer <key>')"));
    return httplib::Server::HandlerResponse::Handled;
  });

  // Every 4xx/5xx without a body (no route, oversize body, bad request line) gets a JSON error.
  svr.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 413)
      send_error(res, make_error(413, "invalid_request_error", "body_too_large",
                                 cat("the request body is larger than ", opts_.max_body_bytes, " bytes")));
    else if (res.status == 404)
      send_error(res, make_error(404, "invalid_request_error", "not_found",
                                 cat("no route for ", req.method, " ", req.path)));
    else
      send_error(res, make_error(res.status, res.status >= 500 ? "server_error" : "invalid_request_error",
                                 cat("http_", res.status), cat("HTTP status ", res.status)));
  });

  svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    send_error(res, make_error(500, "server_error", "internal_error", what));
  });

  svr.Get("/health", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok", "text/plain");
  });

  // Prometheus text format (as vLLM's /metrics, with the safekey_ prefix); behind the API key.
  svr.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_text(stats()), "text/plain; version=0.0.4");
  });

  svr.Get("/v1/models", [this, model](const httplib::Request&, httplib::Response& res) {
    const auto created = static_cast<int64_t>(std::time(nullptr));
    json cards = json::array({json{{"id", model},
                                   {"object", "model"},
                                   {"created", created},
                                   {"owned_by", "safekey"},
                                   {"root", model},
                                   {"max_model_len", gen_.max_context()}}});
    for (const auto& lm : opts_.lora_modules)  // as vLLM lists LoRA modules: parent = the base
      cards.push_back({{"id", lm.name}, {"object", "model"}, {"created", created}, {"owned_by", "safekey"},
                       {"root", lm.source}, {"parent", model}, {"max_model_len", gen_.max_context()}});
    res.set_content(dump({{"object", "list"}, {"data", cards}}), "application/json");
  });

  auto handle = [this, served](Endpoint ep, const httplib::Request& req, httplib::Response& res) {
    if (draining_) {
      send_error(res, make_error(503, "server_error", "shutting_down", "the server is shutting down"));
      return;
    }
    ParsedRequest pr;
    if (auto e = parse_request(ep, req.body, served, opts_.limits, &pr)) return send_error(res, *e);
    Scheduler& sched = lora_scheds_.count(pr.model) ? *lora_scheds_.at(pr.model) : *sched_;
    const std::string model = pr.model.empty() ? served.front() : pr.model;  // named in the response
    infer::Sequence seq;
    try {
      std::lock_guard<std::mutex> lk(prep_mu_);
      seq = gen_.make_sequence(pr.request, pr.params, 0, 0);
    } catch (const std::exception& e) {
      return send_error(res, make_error(400, "invalid_request_error", "invalid_prompt", e.what()));
    }
    int64_t ctx = gen_.max_context(), n_prompt = static_cast<int64_t>(seq.prompt_ids.size());
    if (n_prompt + pr.params.max_new_tokens > ctx) {
      ApiError e = make_error(400, "invalid_request_error", "context_length_exceeded",
                              cat("This model's maximum context length is ", ctx, " tokens. However, you requested ",
                                  n_prompt + pr.params.max_new_tokens, " tokens (", n_prompt,
                                  " in the prompt, ", pr.params.max_new_tokens, " for the completion)."));
      e.param = "max_tokens";
      return send_error(res, e);
    }
    if (opts_.max_waiting > 0 && sched.stats().waiting >= opts_.max_waiting) {
      res.set_header("Retry-After", "1");
      return send_error(res, make_error(503, "server_error", "overloaded",
                                        cat("all sequence slots are busy and ", opts_.max_waiting,
                                            " requests are already waiting; retry later")));
    }
    auto job = sched.submit(std::move(seq));
    if (!job) {
      send_error(res, make_error(503, "server_error", "shutting_down", "the server is shutting down"));
      return;
    }
    std::string id = random_id(ep == Endpoint::Chat ? "chatcmpl-" : "cmpl-");
    int64_t created = static_cast<int64_t>(std::time(nullptr));
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(opts_.request_timeout_ms);

    if (!pr.stream) {
      std::string ignored;
      bool done = false;
      while (!done) {
        done = job->wait_take(200, &ignored);
        ignored.clear();
        if (!done && std::chrono::steady_clock::now() > deadline) job->cancel = true;
        // After a cancel the scheduler answers within a step; bound that wait too.
        if (!done && std::chrono::steady_clock::now() > deadline + std::chrono::seconds(60)) {
          send_error(res, make_error(504, "server_error", "timeout", "the request timed out"));
          return;
        }
      }
      if (!job->error.empty())
        return send_error(res, make_error(500, "server_error", "generation_failed", job->error));
      json body = ep == Endpoint::Chat
                      ? chat_response(id, created, model, job->result, opts_.reasoning_parser)
                      : completion_response(id, created, model, job->result);
      res.set_content(dump(body), "application/json");
      return;
    }

    auto st = std::make_shared<StreamState>();
    st->ep = ep;
    st->job = job;
    st->id = id;
    st->model = model;
    st->created = created;
    st->include_usage = pr.include_usage;
    st->reasoning_parser = opts_.reasoning_parser;
    st->deadline = deadline;
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [st](size_t, httplib::DataSink& sink) {
          if (st->finished) {
            sink.done();
            return true;
          }
          std::string out;
          if (!st->sent_role && st->ep == Endpoint::Chat) {
            out += sse(chat_chunk(st->id, st->created, st->model,
                                  {{"role", "assistant"}, {"content", ""}}, nullptr));
            st->sent_role = true;
          }
          std::string text;
          bool done = st->job->wait_take(100, &text);
          out += text_chunks(*st, text);
          if (done) out += final_chunks(*st);
          if (!out.empty() && !sink.write(out.data(), out.size())) {
            st->job->cancel = true;  // the client went away
            return false;
          }
          if (!done && std::chrono::steady_clock::now() > st->deadline) st->job->cancel = true;
          if (!done && std::chrono::steady_clock::now() > st->deadline + std::chrono::seconds(60))
            return false;
          if (done) {
            st->finished = true;
            sink.done();
          }
          return true;
        },
        [st](bool) {
          // Runs when the response is destroyed, whether or not the stream completed.
          if (!st->finished) st->job->cancel = true;
        });
  };

  svr.Post("/v1/chat/completions", [handle](const httplib::Request& req, httplib::Response& res) {
    handle(Endpoint::Chat, req, res);
  });
  svr.Post("/v1/completions", [handle](const httplib::Request& req, httplib::Response& res) {
    handle(Endpoint::Completion, req, res);
  });
}

}  // namespace safekey::serve
