#include "safekey/eval/endpoint_generation.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <mutex>
#include <thread>

namespace safekey::eval {

net::ChatRequest endpoint_request(const BenchItem& item, const EndpointGenerationOptions& opts) {
  net::ChatRequest r;
  r.model = opts.model;
  if (!item.prefill_target.empty()) {
    SK_CHECK(opts.render != nullptr, "--generate-endpoint: item ", item.id,
             " is a prefilling attack: its prompt (the chat template's generation prompt, then the first "
             "--prefilling tokens of the target) must be rendered with the served model's tokenizer; give "
             "--generate-tokenizer DIR (its tokenizer.json and chat template), or generate locally with --model");
    r.prompt = opts.render(item);
    SK_CHECK(!r.prompt.empty(), "--generate-endpoint: item ", item.id, ": the rendered prompt is empty");
  } else {
    for (const auto& m : item.messages) r.messages.push_back({m.role, m.content});
  }
  r.temperature = opts.temperature;
  r.max_tokens = opts.max_tokens;
  r.extra["top_p"] = opts.top_p;
  if (opts.top_k > 0) r.extra["top_k"] = opts.top_k;
  if (opts.repetition_penalty != 1) r.extra["repetition_penalty"] = opts.repetition_penalty;
  if (opts.seed >= 0) r.extra["seed"] = opts.seed;
  if (!opts.stop.empty()) r.extra["stop"] = opts.stop;
  return r;
}

std::string text_from_reply(const net::ChatReply& reply) {
  const json* msg = nullptr;
  if (reply.raw.is_object() && reply.raw.contains("choices") && reply.raw["choices"].is_array() &&
      !reply.raw["choices"].empty() && reply.raw["choices"][0].contains("message"))
    msg = &reply.raw["choices"][0]["message"];
  const bool split =
      msg && msg->contains("reasoning_content") && (*msg)["reasoning_content"].is_string();
  if (!split) return reply.content;
  // A server with a reasoning parser: content is null while the model is still thinking.
  const bool has_content = msg->contains("content") && (*msg)["content"].is_string();
  return has_content ? reply.reasoning_content + "</think>" + reply.content
                     : reply.reasoning_content;
}

std::vector<EndpointCompletion> generate_via_endpoint(const std::vector<BenchItem>& items,
                                                      const EndpointGenerationOptions& opts) {
  SK_CHECK(!opts.model.empty(),
           "--generate-endpoint needs --generate-model (the name the server serves)");
  std::vector<net::ChatRequest> reqs;
  for (const auto& it : items) reqs.push_back(endpoint_request(it, opts));
  net::ChatClient client(opts.client);
  std::vector<EndpointCompletion> out(items.size());
  std::atomic<size_t> next{0}, done{0};
  std::atomic<bool> stop{false};
  std::exception_ptr fatal;
  std::mutex mu;
  const auto t0 = std::chrono::steady_clock::now();
  auto worker = [&]() {
    while (!stop) {
      size_t i = next++;
      if (i >= items.size()) return;
      try {
        net::ChatReply rep = client.complete(reqs[i]);
        EndpointCompletion& c = out[i];
        c.text = text_from_reply(rep);
        c.prompt = reqs[i].prompt;
        c.finish_reason = rep.finish_reason;
        if (rep.raw.contains("usage") && rep.raw["usage"].is_object()) {
          c.prompt_tokens = rep.raw["usage"].value("prompt_tokens", int64_t{0});
          c.completion_tokens = rep.raw["usage"].value("completion_tokens", int64_t{0});
        }
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> g(mu);
        if (!fatal) {
          try {
            fail("--generate-endpoint ", opts.client.endpoint, ": item ", items[i].id, ": ",
                 e.what());
          } catch (...) {
            fatal = std::current_exception();
          }
        }
        stop = true;
        return;
      }
      size_t d = ++done;
      if (opts.progress && (d == items.size() || d % std::max<size_t>(1, items.size() / 10) == 0)) {
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::lock_guard<std::mutex> g(mu);
        std::fprintf(stderr, "generate (endpoint): %zu/%zu (%.1f s)\n", d, items.size(), s);
      }
    }
  };
  std::vector<std::thread> pool;
  const int n = std::max(
      1, std::min<int>(opts.concurrency, static_cast<int>(std::max<size_t>(1, items.size()))));
  for (int t = 0; t < n; ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  if (fatal) std::rethrow_exception(fatal);
  return out;
}

}  // namespace safekey::eval
