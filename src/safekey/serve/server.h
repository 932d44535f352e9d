// `safekey serve`: an OpenAI-compatible HTTP server on cpp-httplib (docs/server.md).
//
//   GET  /v1/models             the served model and the LoRA adapters served beside it
//   POST /v1/chat/completions   chat (messages -> chat template), SSE streaming, reasoning_content
//   POST /v1/completions        raw prompt (string or token ids), SSE streaming
//   GET  /metrics               Prometheus text: running/waiting gauges, request and token counters
//   GET  /health                200 "ok" (the only route that needs no API key)
//
// Requests are prepared (template + tokenization) on the HTTP worker thread and decoded together
// by the scheduler thread (continuous batching). Every wait is bounded (request timeout), a client
// that disconnects mid-stream cancels its request, and stop() drains running requests before exit.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
#include <map>

#include "safekey/infer/generator.h"
#include "safekey/serve/openai.h"

namespace httplib {
class Server;
}

namespace safekey::serve {

class Scheduler;
struct SchedulerStats;

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;                  // 0 = any free port (see Server::port())
  std::string api_key;              // non-empty: require "Authorization: Bearer <key>" (all but /health)
  int64_t max_waiting = 0;          // > 0: refuse (503) a request when this many already wait
  std::string served_model_name = "safekey";
  size_t max_body_bytes = 1 << 20;  // larger bodies get 413
  Limits limits;
  int worker_threads = 64;          // HTTP connections served at once
  int64_t request_timeout_ms = 600'000;  // a request waits at most this long for its result
  int64_t drain_ms = 10'000;        // on stop: how long running requests may finish
  bool reasoning_parser = true;     // deepseek_r1: split <think>...</think> into reasoning_content
  // LoRA adapters served beside the base model (vLLM's --lora-modules): a request's `model` field
  // picks one by name. Each is the base with that adapter (model::share_weights: the base weights
  // are not copied) and is decoded by its own scheduler, so requests for different adapters run
  // side by side in separate batches. `source` is listed as the card's root.
  struct LoraModule {
    std::string name, source;
    model::DecoderModel model{nullptr};
  };
  std::vector<LoraModule> lora_modules;
};

// The Prometheus text exposition of the batching counters (GET /metrics).
std::string metrics_text(const SchedulerStats& st);

class Server {
 public:
  // The generator must outlive the server; the server uses its model, tokenizer and chat template
  // (not its generate(), which must not run at the same time).
  Server(infer::Generator& gen, ServerOptions opts);
  ~Server();
  // Binds and starts serving on background threads. Throws Error when the address is taken.
  void start();
  int port() const { return port_; }
  // Stops accepting, drains (ServerOptions::drain_ms), cancels the rest, joins. Idempotent.
  void stop();
  bool running() const { return running_; }
  // Batching counters (requests done, tokens generated, largest batch).
  SchedulerStats stats() const;

 private:
  void routes();
  infer::Generator& gen_;
  ServerOptions opts_;
  std::unique_ptr<httplib::Server> http_;
  std::unique_ptr<Scheduler> sched_;                           // the base model's
  std::map<std::string, std::unique_ptr<Scheduler>> lora_scheds_;  // by LoRA module name
  std::thread listen_thread_;
  std::mutex prep_mu_;
  std::atomic<bool> running_{false}, draining_{false};
  std::atomic<uint64_t> next_id_{1};
  int port_ = 0;
};

}  // namespace safekey::serve
