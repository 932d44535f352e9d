// Generation throughput on this machine: prefill tokens/s and decode tokens/s at batch 1 and 16 for
// a ~10M and a ~100M parameter random Qwen2-style model (fp32, CPU), through infer::Engine (the
// same loop `safekey generate` and the server use: KV cache, left padding, per-row sampling with the
// reference's repetition penalty 1.2).
//
//   build/gen/bench_generate [--models 10m,100m] [--new-tokens 64] [--prompt-tokens 64] [--threads 0]
//   build/gen/bench_generate --models 20m,100m --positions 128,256,512,1024,2048,4096 [--steps 8]
//       (decode ms per step at each prompt length, batch 1 and 16)
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "safekey/infer/engine.h"
#include "safekey/model/decoder.h"
#include "safekey/tensor/runtime.h"

using namespace safekey;
using clock_type = std::chrono::steady_clock;

namespace {

struct Preset {
  const char* name;
  int64_t vocab, hidden, inter, layers, heads, kv_heads;
};
const Preset kPresets[] = {
    {"10m", 16384, 256, 688, 6, 4, 4},
    {"20m", 16384, 512, 1536, 4, 8, 2},
    {"100m", 32000, 768, 2048, 12, 12, 4},
};

model::DecoderModel make_model(const Preset& p) {
  json cfg = {{"architectures", {"Qwen2ForCausalLM"}}, {"model_type", "qwen2"}, {"vocab_size", p.vocab},
              {"hidden_size", p.hidden}, {"intermediate_size", p.inter}, {"num_hidden_layers", p.layers},
              {"num_attention_heads", p.heads}, {"num_key_value_heads", p.kv_heads},
              {"max_position_embeddings", 4096}, {"tie_word_embeddings", true}, {"torch_dtype", "float32"},
              {"use_sliding_window", false}};
  model::DecoderModel m(model::ModelConfig::from_json(cfg, std::string("preset ") + p.name));
  model::init_weights(m, 1);
  m->eval();
  return m;
}

infer::EngineOptions engine_opts(int64_t batch) {
  infer::EngineOptions o;
  o.max_batch_size = batch;
  o.eos_token_ids = {};  // never stop early: every row makes exactly --new-tokens
  o.decode = [](const std::vector<int64_t>& ids) { return std::string(ids.size(), 'x'); };
  return o;
}

std::vector<int64_t> prompt(int64_t n, int64_t vocab, int64_t salt) {
  std::vector<int64_t> p(n);
  for (int64_t i = 0; i < n; ++i) p[i] = (i * 7919 + salt * 104729) % vocab;
  return p;
}

struct Result {
  double prefill_tokens_per_s = 0, decode_tokens_per_s = 0;  // wall clock
  double prefill_tokens_per_cpu_s = 0, decode_tokens_per_cpu_s = 0;  // process CPU time
};

double cpu_s() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

// Runs `batch` sequences of `prompt_len` tokens for `new_tokens` each. The first step() prefills
// (and samples the first token); the following steps are pure decode.
Result run(model::DecoderModel& m, int64_t batch, int64_t prompt_len, int64_t new_tokens) {
  infer::Engine eng(m, engine_opts(batch), [](uint64_t, const std::string&, bool, const infer::Completion*) {});
  for (int64_t b = 0; b < batch; ++b) {
    infer::Sequence s;
    s.id = static_cast<uint64_t>(b);
    s.prompt_ids = prompt(prompt_len, m->config().vocab_size, b);
    s.params.max_new_tokens = new_tokens;
    s.params.repetition_penalty = 1.2;
    s.params.ignore_eos = true;
    eng.submit(std::move(s));
  }
  auto t0 = clock_type::now();
  double c0 = cpu_s();
  eng.step();  // prefill of every row (and its first token)
  auto t1 = clock_type::now();
  double c1 = cpu_s();
  int64_t decoded = 0;
  while (!eng.idle()) decoded += eng.step();
  auto t2 = clock_type::now();
  double c2 = cpu_s();
  Result r;
  r.prefill_tokens_per_s = batch * prompt_len / std::chrono::duration<double>(t1 - t0).count();
  r.decode_tokens_per_s = decoded / std::chrono::duration<double>(t2 - t1).count();
  r.prefill_tokens_per_cpu_s = batch * prompt_len / (c1 - c0);
  r.decode_tokens_per_cpu_s = decoded / (c2 - c1);
  return r;
}

// Per-token decode time after `position` prompt tokens: `batch` rows prefilled to that length, then
// `steps` decode steps timed (ms per step, the median of the steps).
double decode_ms_at(model::DecoderModel& m, int64_t batch, int64_t position, int64_t steps) {
  infer::Engine eng(m, engine_opts(batch), [](uint64_t, const std::string&, bool, const infer::Completion*) {});
  for (int64_t b = 0; b < batch; ++b) {
    infer::Sequence s;
    s.id = static_cast<uint64_t>(b);
    s.prompt_ids = prompt(position, m->config().vocab_size, b);
    s.params.max_new_tokens = steps + 2;
    s.params.repetition_penalty = 1.2;
    s.params.ignore_eos = true;
    eng.submit(std::move(s));
  }
  eng.step();  // prefill + first decode step
  std::vector<double> ms;
  for (int64_t i = 0; i < steps; ++i) {
    auto t0 = clock_type::now();
    eng.step();
    ms.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::string models = "10m,100m";
  int64_t new_tokens = 64, prompt_len = 64, prefill_len = 512;
  int threads = 0;
  std::string positions;  // e.g. 128,256,512,1024,2048,4096: the per-position decode table instead
  int64_t steps = 8;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--models")) models = argv[i + 1];
    else if (!std::strcmp(argv[i], "--new-tokens")) new_tokens = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--prompt-tokens")) prompt_len = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--positions")) positions = argv[i + 1];
    else if (!std::strcmp(argv[i], "--steps")) steps = std::atoll(argv[i + 1]);
    else {
      std::fprintf(stderr, "unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  runtime::set_threads(threads);
  runtime::set_cpu_memory("auto", "cpu");  // as safekey does on the CPU
  torch::NoGradGuard ng;
  if (!positions.empty()) {
    std::vector<int64_t> at;
    for (size_t b = 0; b < positions.size();) {
      size_t e = positions.find(',', b);
      if (e == std::string::npos) e = positions.size();
      at.push_back(std::atoll(positions.substr(b, e - b).c_str()));
      b = e + 1;
    }
    // Copy bandwidth of this machine: a 256 MiB float tensor copied 5 times; read + write bytes.
    double bw = 0;
    {
      torch::Tensor a = torch::ones({64 << 20}), b = torch::empty_like(a);
      b.copy_(a);
      auto t0 = clock_type::now();
      for (int i = 0; i < 5; ++i) b.copy_(a);
      bw = 5.0 * 2 * a.numel() * 4 / std::chrono::duration<double>(clock_type::now() - t0).count();
    }
    std::printf("bench_generate: %s; decode ms per step (median of %lld) after N prompt tokens, fp32; copy bandwidth "
                "%.1f GB/s (read + write)\n",
                runtime::describe().c_str(), static_cast<long long>(steps), bw / 1e9);
    for (const auto& p : kPresets) {
      if (models.find(p.name) == std::string::npos) continue;
      auto m = make_model(p);
      decode_ms_at(m, 1, 8, 2);  // warm-up
      const auto& c = m->config();
      const double weight_bytes = 4.0 * static_cast<double>(c.num_parameters());
      const double kv_bytes_per_pos = 4.0 * 2 * c.num_hidden_layers * c.num_key_value_heads * c.head_dim;
      std::printf("%-6s %9.1fM params\n%8s %10s %10s %12s %14s %8s %12s\n", p.name, c.num_parameters() / 1e6, "N",
                  "b=1 ms", "b=16 ms", "b=1 tok/s", "bound tok/s", "share", "b16/b1 tok/s");
      for (int64_t n : at) {
        double b1 = decode_ms_at(m, 1, n, steps), b16 = decode_ms_at(m, 16, n, steps);
        // One token at batch 1 reads every weight once and the row's keys and values.
        const double bound = bw / (weight_bytes + kv_bytes_per_pos * static_cast<double>(n));
        std::printf("%8lld %10.2f %10.2f %12.1f %14.1f %7.0f%% %12.2f\n", static_cast<long long>(n), b1, b16,
                    1000.0 / b1, bound, 100.0 * (1000.0 / b1) / bound, (16 * 1000.0 / b16) / (1000.0 / b1));
        std::fflush(stdout);
      }
    }
    return 0;
  }
  std::printf("bench_generate: %s; prompt %lld tokens, %lld new tokens per row, fp32\n",
              runtime::describe().c_str(), static_cast<long long>(prompt_len),
              static_cast<long long>(new_tokens));
  std::printf("%-6s %10s %18s %18s %18s %10s\n", "model", "params", "prefill512 tok/s", "decode b=1 tok/s",
              "decode b=16 tok/s", "b16/b1");
  for (const auto& p : kPresets) {
    if (models.find(p.name) == std::string::npos) continue;
    auto m = make_model(p);
    run(m, 1, 8, 4);  // warm-up
    Result pre = run(m, 1, prefill_len, 1);
    Result b1 = run(m, 1, prompt_len, new_tokens);
    Result b16 = run(m, 16, prompt_len, new_tokens);
    std::printf("%-6s %9.1fM %18.0f %18.1f %18.1f %9.2fx\n", p.name, m->config().num_parameters() / 1e6,
                pre.prefill_tokens_per_s, b1.decode_tokens_per_s, b16.decode_tokens_per_s,
                b16.decode_tokens_per_s / b1.decode_tokens_per_s);
    std::printf("%-6s per CPU-second: prefill512 %.0f, decode b=1 %.1f, decode b=16 %.1f (%.2fx)\n", p.name,
                pre.prefill_tokens_per_cpu_s, b1.decode_tokens_per_cpu_s, b16.decode_tokens_per_cpu_s,
                b16.decode_tokens_per_cpu_s / b1.decode_tokens_per_cpu_s);
    std::printf("%-6s batch-16 prefill (%lld-token prompts): %.0f tok/s\n", p.name,
                static_cast<long long>(prompt_len), b16.prefill_tokens_per_s);
    std::fflush(stdout);
  }
  return 0;
}
