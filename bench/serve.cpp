// Server throughput: requests/s with 32 concurrent HTTP clients on loopback against an in-process
// `safekey serve` (real tokenizer and chat template of R1-Distill-Qwen, a small random model), with
// batching (batch 32) and without (batch 1) for comparison.
//
//   build/gen/bench_serve [--clients 32] [--requests 8] [--max-tokens 32] [--hidden 64]
//       [--tokenizer build/tokref/r1_distill_qwen_tokenizer.json]
//       [--template ../shared/data/hf-configs/reconstructed/DeepSeek-R1-Distill-Qwen-7B/tokenizer_config.json]
// Run from the repository root (the default paths are relative to it).
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>

#include "safekey/infer/generator.h"
#include "safekey/serve/scheduler.h"
#include "safekey/serve/server.h"
#include "safekey/tensor/runtime.h"
#include "safekey/text/chat_template.h"
#include "safekey/text/tokenizer.h"

using namespace safekey;

int main(int argc, char** argv) {
  int clients = 32, per_client = 8, max_tokens = 32, hidden = 64;
  std::string tok_path = "build/tokref/r1_distill_qwen_tokenizer.json";
  std::string tmpl = "../shared/data/hf-configs/reconstructed/DeepSeek-R1-Distill-Qwen-7B/tokenizer_config.json";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--clients") clients = std::atoi(argv[i + 1]);
    else if (a == "--requests") per_client = std::atoi(argv[i + 1]);
    else if (a == "--max-tokens") max_tokens = std::atoi(argv[i + 1]);
    else if (a == "--hidden") hidden = std::atoi(argv[i + 1]);
    else if (a == "--tokenizer") tok_path = argv[i + 1];
    else if (a == "--template") tmpl = argv[i + 1];
    else {
      std::fprintf(stderr, "unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  runtime::set_threads(0);
  runtime::set_cpu_memory("auto", "cpu");  // as safekey does on the CPU
  try {
    auto tok = text::Tokenizer::from_file(tok_path);
    auto chat = text::ChatFormat::from_path(tmpl);
    json cfg = {{"architectures", {"Qwen2ForCausalLM"}}, {"model_type", "qwen2"}, {"vocab_size", 151936},
                {"hidden_size", hidden}, {"intermediate_size", hidden * 3}, {"num_hidden_layers", 4},
                {"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"max_position_embeddings", 4096},
                {"tie_word_embeddings", true}, {"use_sliding_window", false}, {"eos_token_id", 151643}};
    model::DecoderModel m(model::ModelConfig::from_json(cfg, "bench model"));
    model::init_weights(m, 3);
    std::printf("bench_serve: %s; model %.1fM params; %d clients x %d requests, max_tokens %d, greedy\n",
                runtime::describe().c_str(), m->config().num_parameters() / 1e6, clients, per_client,
                max_tokens);
    for (int batch : {32, 1}) {
      infer::GeneratorOptions go;
      go.max_batch_size = batch;
      infer::Generator gen(m, tok, &chat, go);
      serve::ServerOptions so;
      so.port = 0;
      so.served_model_name = "bench";
      serve::Server server(gen, so);
      server.start();
      std::atomic<int> ok{0}, failed{0};
      std::mutex why_mu;
      std::string why;  // the first failure
      std::vector<int> failed_at;  // request number (1-based, per client) of every failure
      std::atomic<int64_t> tokens{0};
      auto t0 = std::chrono::steady_clock::now();
      std::vector<std::thread> th;
      for (int c = 0; c < clients; ++c)
        th.emplace_back([&, c] {
          httplib::Client cl("127.0.0.1", server.port());
          cl.set_read_timeout(600);
          for (int k = 0; k < per_client; ++k) {
            json body = {{"model", "bench"},
                         {"messages", {{{"role", "user"}, {"content", "Client " + std::to_string(c) + " asks question " + std::to_string(k)}}}},
                         {"max_tokens", max_tokens}, {"temperature", 0}, {"ignore_eos", true}};
            auto r = cl.Post("/v1/chat/completions", body.dump(), "application/json");
            if (r && r->status == 200) {
              ok++;
              tokens += json::parse(r->body)["usage"]["completion_tokens"].get<int64_t>();
            } else {
              {
                std::lock_guard<std::mutex> lock(why_mu);
                failed_at.push_back(k + 1);
              }
              if (failed++ == 0) {
                std::lock_guard<std::mutex> lock(why_mu);
                why = r ? cat("HTTP ", r->status, ": ", r->body.substr(0, 200))
                        : cat("no response (", httplib::to_string(r.error()), ")");
                why += cat(" on request ", k + 1, " of client ", c);
              }
            }
          }
        });
      for (auto& t : th) t.join();
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      auto st = server.stats();
      server.stop();
      std::printf("batch %2d: %d ok, %d failed in %.2f s: %.2f requests/s, %.0f generated tokens/s, largest batch %lld\n",
                  batch, ok.load(), failed.load(), s, ok / s, tokens / s, static_cast<long long>(st.max_running));
      if (failed) {
        std::string at;
        for (int k : failed_at) at += cat(at.empty() ? "" : ",", k);
        std::printf("  first failure: %s; failed request numbers: %s\n", why.c_str(), at.c_str());
      }
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_serve: %s\n", e.what());
    return 1;
  }
  return 0;
}
