// bench_model: decoder forward and forward+backward throughput on this machine's CPU (or a GPU),
// next to the device's measured matrix-product rate (a large torch::mm in the same dtype), for a ~10M
// and a ~100M parameter Qwen2-shaped model (GQA, q/k/v biases, tied embeddings) at sequence 512, and
// on request the R1-Distill-Qwen-1.5B shape (untied, 1.78B parameters).
//
//   bench_model [--threads N] [--seq 512] [--batch 1] [--iters 3] [--only 10M|100M|1.5B] [--ckpt]
//               [--device cpu|cuda] [--dtype float32|bfloat16] [--cpu-memory reuse|release]
//
// Model FLOPs: 2 x (matmul parameters incl. the LM head) x tokens + attention (QK^T and PV over the
// full T x T square, as computed), forward; forward+backward = 3 x forward.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <torch/cuda.h>

#include "safekey/model/decoder.h"
#include "safekey/tensor/runtime.h"

using namespace safekey;
using namespace safekey::model;
using Clock = std::chrono::steady_clock;

namespace {

// A ForwardInput from its leading fields (the others keep their defaults), without aggregate
// initialisation's missing-field warnings.
model::ForwardInput fwd_in(torch::Tensor ids, torch::Tensor pos = {}, torch::Tensor key_mask = {},
                           model::KVCache* cache = nullptr) {
  model::ForwardInput in;
  in.input_ids = std::move(ids);
  in.position_ids = std::move(pos);
  in.key_mask = std::move(key_mask);
  in.cache = cache;
  return in;
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

torch::TensorOptions g_opts = torch::TensorOptions().dtype(torch::kFloat);  // device and dtype

void sync() {
  if (g_opts.device().is_cuda()) torch::cuda::synchronize();
}

double gemm_gflops(int64_t n, int iters) {
  torch::Tensor a = torch::randn({n, n}, g_opts), b = torch::randn({n, n}, g_opts), c;
  c = torch::mm(a, b);  // warm-up
  sync();
  auto t0 = Clock::now();
  for (int i = 0; i < iters; ++i) c = torch::mm(a, b);
  sync();
  return 2.0 * n * n * n * iters / seconds_since(t0) / 1e9;
}

ModelConfig qwen2_shaped(int64_t hidden, int64_t layers, int64_t heads, int64_t inter, int64_t vocab,
                         bool tied = true) {
  json j = {{"architectures", {"Qwen2ForCausalLM"}}, {"vocab_size", vocab},
            {"hidden_size", hidden},                 {"intermediate_size", inter},
            {"num_hidden_layers", layers},           {"num_attention_heads", heads},
            {"num_key_value_heads", 2},              {"tie_word_embeddings", tied},
            {"rope_theta", 1000000.0},               {"max_position_embeddings", 4096}};
  return ModelConfig::from_json(j, "bench");
}

// Forward FLOPs for B x T tokens.
double forward_flops(const ModelConfig& c, int64_t B, int64_t T) {
  const double H = c.hidden_size, I = c.intermediate_size, hd = c.head_dim;
  const double q = c.num_attention_heads * hd, kv = c.num_key_value_heads * hd;
  const double per_layer = H * q + 2 * H * kv + q * H + 3 * H * I;
  const double mm_params = c.num_hidden_layers * per_layer + c.vocab_size * H;
  const double attn = c.num_hidden_layers * 2.0 * 2.0 * T * T * q;  // per sequence
  return B * (2.0 * mm_params * T + attn);
}

void run(const std::string& label, const ModelConfig& cfg, int64_t B, int64_t T, int iters,
         bool ckpt, double sgemm) {
  DecoderModel m(cfg);
  init_weights(m, 1);
  m->to(g_opts.device(), g_opts.dtype().toScalarType());
  torch::Tensor ids = torch::randint(0, cfg.vocab_size, {B, T}, torch::kLong).to(g_opts.device());
  torch::Tensor targets = ids.roll(-1, 1).reshape(-1);
  const double fwd_flops = forward_flops(cfg, B, T);
  const double tokens = static_cast<double>(B * T);

  m->eval();
  double fwd_s;
  {
    torch::NoGradGuard ng;
    m->forward(fwd_in(ids));
    sync();
    auto t0 = Clock::now();
    for (int i = 0; i < iters; ++i) m->forward(fwd_in(ids));
    sync();
    fwd_s = seconds_since(t0) / iters;
  }
  m->train();
  auto step = [&](bool use_ckpt) {
    m->set_gradient_checkpointing(use_ckpt);
    m->zero_grad();
    ForwardOutput out = m->forward(fwd_in(ids));
    torch::Tensor loss = torch::nn::functional::cross_entropy(
        out.logits.view({-1, cfg.vocab_size}).to(torch::kFloat), targets);
    loss.backward();
  };
  step(false);
  sync();
  auto t0 = Clock::now();
  for (int i = 0; i < iters; ++i) step(false);
  sync();
  double fb_s = seconds_since(t0) / iters;

  std::printf("%-5s %6.1fM params  B=%lld T=%lld\n", label.c_str(), cfg.num_parameters() / 1e6,
              static_cast<long long>(B), static_cast<long long>(T));
  std::printf("  forward          %9.0f tokens/s  %7.1f GFLOP/s  %5.1f%% of sgemm\n",
              tokens / fwd_s, fwd_flops / fwd_s / 1e9, 100 * fwd_flops / fwd_s / 1e9 / sgemm);
  std::printf("  forward+backward %9.0f tokens/s  %7.1f GFLOP/s  %5.1f%% of sgemm\n",
              tokens / fb_s, 3 * fwd_flops / fb_s / 1e9, 100 * 3 * fwd_flops / fb_s / 1e9 / sgemm);
  if (ckpt) {
    step(true);
    sync();
    auto t1 = Clock::now();
    for (int i = 0; i < iters; ++i) step(true);
    sync();
    double ck_s = seconds_since(t1) / iters;
    std::printf("  fwd+bwd, layer checkpointing %9.0f tokens/s  (%.2fx the plain step time)\n",
                tokens / ck_s, ck_s / fb_s);
  }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0, iters = 3;
  int64_t T = 512, B = 1;
  std::string only;
  bool ckpt = false;
  std::string cpu_memory = "reuse", device = "cpu", dtype = "float32";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_model: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--threads") threads = std::stoi(next());
    else if (a == "--seq") T = std::stoll(next());
    else if (a == "--batch") B = std::stoll(next());
    else if (a == "--iters") iters = std::stoi(next());
    else if (a == "--only") only = next();
    else if (a == "--ckpt") ckpt = true;
    else if (a == "--cpu-memory") cpu_memory = next();
    else if (a == "--device") device = next();
    else if (a == "--dtype") dtype = next();
    else {
      std::fprintf(stderr, "usage: bench_model [--threads N] [--seq T] [--batch B] [--iters K] "
                           "[--only 10M|100M|1.5B] [--ckpt] [--device cpu|cuda] [--dtype float32|bfloat16] "
                           "[--cpu-memory reuse|release]\n");
      return 2;
    }
  }
  runtime::set_threads(threads);
  runtime::set_cpu_memory(cpu_memory, device);
  if (dtype != "float32" && dtype != "bfloat16") {
    std::fprintf(stderr, "bench_model: --dtype must be float32 or bfloat16\n");
    return 2;
  }
  g_opts = g_opts.device(torch::Device(device)).dtype(dtype == "bfloat16" ? torch::kBFloat16 : torch::kFloat);
  torch::manual_seed(0);
  std::printf("bench_model: %s; %s, %s\n", runtime::describe().c_str(), device.c_str(), dtype.c_str());
  const int64_t n = g_opts.device().is_cuda() ? 8192 : 2048;
  double sgemm = gemm_gflops(n, g_opts.device().is_cuda() ? 20 : 5);
  std::printf("gemm (torch::mm %lldx%lld %s, %s): %.1f GFLOP/s (\"sgemm\" below)\n\n",
              static_cast<long long>(n), static_cast<long long>(n), dtype.c_str(), device.c_str(), sgemm);
  std::fflush(stdout);
  if (only.empty() || only == "10M")
    run("10M", qwen2_shaped(256, 6, 4, 1408, 8192), B, T, iters * 3, ckpt, sgemm);
  if (only.empty() || only == "100M")
    run("100M", qwen2_shaped(768, 10, 12, 2816, 32000), B, T, iters, ckpt, sgemm);
  if (only == "1.5B")  // DeepSeek-R1-Distill-Qwen-1.5B's shape
    run("1.5B", qwen2_shaped(1536, 28, 12, 8960, 151936, /*tied=*/false), B, T, iters, ckpt, sgemm);
  return 0;
}
