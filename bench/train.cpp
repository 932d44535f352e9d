// bench_train: the cost of the SafeKey step (figures for BENCHMARKS.md, "Training step").
//   P1  SafeKey step time / SFT step time on the same model and batch with realistic lengths
//       (query ~200, U ~60, K ~20, total ~1000 tokens per row); goal <= 1.15. Also the reference's
//       way (a second full-length masked pass), which costs ~2x by construction.
//   P2  training tokens/s and achieved GFLOP/s next to a measured sgemm; peak RSS (high-water mark,
//       each configuration in a fresh child process) with and without gradient checkpointing.
// Usage: bench_train [--hidden 256] [--layers 4] [--vocab 4096] [--rows 2] [--reps 3] [--threads 0]
//                    [--cpu-memory reuse|release]  (as safekey's --cpu-memory; default reuse)
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common.h"
#include "safekey/model/decoder.h"
#include "safekey/tensor/runtime.h"
#include "safekey/train/batch.h"
#include "safekey/train/step.h"

using namespace safekey;
using Clock = std::chrono::steady_clock;

namespace {

struct Opts {
  int64_t hidden = 256, layers = 4, vocab = 4096, rows = 2, reps = 3, threads = 0;
  int64_t query = 200, u = 60, k = 20, total = 1000;
  std::string cpu_memory = "reuse";
};

model::ModelConfig make_config(const Opts& o) {
  return bench::qwen2_config(o.hidden, o.layers, o.vocab, o.hidden / 32, std::max<int64_t>(1, o.hidden / 64));
}

train::Batch make_batch(const Opts& o) {
  std::vector<data::TokenizedExample> ex(static_cast<size_t>(o.rows));
  torch::manual_seed(5);
  for (int64_t r = 0; r < o.rows; ++r) {
    auto& e = ex[static_cast<size_t>(r)];
    const int64_t q = o.query + 7 * r, len = o.total - 13 * r;  // slightly different rows
    auto ids = torch::randint(0, o.vocab - 2, {len}, torch::kInt64);
    e.input_ids.assign(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + len);
    e.labels = e.input_ids;
    for (int64_t t = 0; t < q; ++t) e.labels[static_cast<size_t>(t)] = -100;
    e.query_len = e.u_begin = q;
    e.u_end = e.k_begin = q + o.u;
    e.k_end = q + o.u + o.k;
    e.unsafe = static_cast<int>(r % 2);
    e.source = "bench row " + std::to_string(r);
  }
  std::vector<const data::TokenizedExample*> p;
  for (auto& e : ex) p.push_back(&e);
  return train::collate(p, o.vocab - 1);
}

// Median-free simple mean of `reps` timed steps after one warm-up step.
double time_steps(model::DecoderModel& m, train::SafetyHead& head, const train::Batch& b,
                  const train::StepOptions& so, int64_t reps) {
  auto zero = [&] {
    for (auto& p : m->parameters()) p.mutable_grad() = torch::Tensor();
    for (auto& p : head->parameters()) p.mutable_grad() = torch::Tensor();
  };
  train::safekey_step(m, &head, b, so);
  zero();
  auto t0 = Clock::now();
  for (int64_t i = 0; i < reps; ++i) {
    train::safekey_step(m, &head, b, so);
    zero();
  }
  return std::chrono::duration<double>(Clock::now() - t0).count() / static_cast<double>(reps);
}

double sgemm_gflops() {
  const int64_t n = 1024;
  auto a = torch::randn({n, n}), b = torch::randn({n, n});
  torch::mm(a, b);
  auto t0 = Clock::now();
  const int reps = 5;
  for (int i = 0; i < reps; ++i) torch::mm(a, b);
  const double s = std::chrono::duration<double>(Clock::now() - t0).count() / reps;
  return 2.0 * n * n * n / s / 1e9;
}

long peak_rss_kb() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

}  // namespace

int main(int argc, char** argv) {
  Opts o;
  std::string mem_mode;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--hidden") o.hidden = std::stoll(v);
    else if (k == "--layers") o.layers = std::stoll(v);
    else if (k == "--vocab") o.vocab = std::stoll(v);
    else if (k == "--rows") o.rows = std::stoll(v);
    else if (k == "--reps") o.reps = std::stoll(v);
    else if (k == "--threads") o.threads = std::stoll(v);
    else if (k == "--cpu-memory") o.cpu_memory = v;
    else if (k == "--mem-child") mem_mode = v;
    else {
      std::fprintf(stderr, "bench_train: unknown flag %s\n", k.c_str());
      return 2;
    }
  }
  runtime::set_threads(static_cast<int>(o.threads));
  runtime::set_cpu_memory(o.cpu_memory, "cpu");
  auto cfg = make_config(o);
  model::DecoderModel m(cfg);
  model::init_weights(m, 1);
  m->train();
  train::SafetyHead head(cfg.hidden_size);
  auto batch = make_batch(o);
  train::StepOptions sft, safekey, reference;
  safekey.qmm = safekey.head = true;
  reference = safekey;
  reference.qmm_pass = train::QmmPass::FullMasked;

  if (!mem_mode.empty()) {  // child: one configuration, report the high-water mark
    m->set_gradient_checkpointing(mem_mode == "ckpt");
    time_steps(m, head, batch, safekey, 1);
    std::printf("%ld\n", peak_rss_kb());
    return 0;
  }

  const double params = static_cast<double>(cfg.num_parameters());
  std::printf("bench_train: %s\n", runtime::describe().c_str());
  std::printf("model: Qwen2-shaped, hidden %lld, layers %lld, vocab %lld, %.2fM parameters, fp32\n",
              static_cast<long long>(o.hidden), static_cast<long long>(o.layers), static_cast<long long>(o.vocab),
              params / 1e6);
  std::printf("batch: %lld rows of ~%lld tokens (query ~%lld, U %lld, K %lld), %lld tokens\n",
              static_cast<long long>(o.rows), static_cast<long long>(o.total), static_cast<long long>(o.query),
              static_cast<long long>(o.u), static_cast<long long>(o.k), static_cast<long long>(batch.num_tokens()));
  const double t_sft = time_steps(m, head, batch, sft, o.reps);
  const double t_sk = time_steps(m, head, batch, safekey, o.reps);
  const double t_ref = time_steps(m, head, batch, reference, o.reps);
  std::printf("\nP1  step time (forward + backward, mean of %lld after a warm-up)\n", static_cast<long long>(o.reps));
  std::printf("  SFT step                               %8.3f s\n", t_sft);
  std::printf("  SafeKey step (truncated QMM + head)    %8.3f s   ratio %.3f  (goal <= 1.15)\n", t_sk, t_sk / t_sft);
  std::printf("  SafeKey step, reference full QMM pass  %8.3f s   ratio %.3f\n", t_ref, t_ref / t_sft);

  const double tokens = static_cast<double>(batch.num_tokens());
  // 6·N·tokens for the matmuls with parameters, plus causal attention scores+values fwd+bwd:
  // 3 passes x 2 matmuls x 2 FLOP x T²/2 x hidden per layer per row.
  double attn = 0;
  for (const auto& r : batch.rows)
    attn += 6.0 * static_cast<double>(r.length) * static_cast<double>(r.length) * static_cast<double>(o.hidden) *
            static_cast<double>(o.layers);
  const double flop_sft = 6.0 * params * tokens + attn;
  const double sgemm = sgemm_gflops();
  std::printf("\nP2  throughput\n");
  std::printf("  SFT:     %8.0f tokens/s, %6.1f GFLOP/s\n", tokens / t_sft, flop_sft / t_sft / 1e9);
  std::printf("  SafeKey: %8.0f tokens/s (training tokens of the batch per second)\n", tokens / t_sk);
  std::printf("  sgemm 1024x1024x1024: %6.1f GFLOP/s  -> SFT step at %.0f%% of sgemm\n", sgemm,
              100.0 * flop_sft / t_sft / 1e9 / sgemm);

  std::printf("\n  peak RSS of one SafeKey step (fresh process each):\n");
  char exe[4096] = {0};
  if (readlink("/proc/self/exe", exe, sizeof exe - 1) <= 0) return 0;
  for (const char* mode : {"plain", "ckpt"}) {
    std::string cmd = std::string(exe) + " --hidden " + std::to_string(o.hidden) + " --layers " +
                      std::to_string(o.layers) + " --vocab " + std::to_string(o.vocab) + " --rows " +
                      std::to_string(o.rows) + " --threads " + std::to_string(o.threads) + " --cpu-memory " + o.cpu_memory +
                      " --mem-child " + mode;
    FILE* p = popen(cmd.c_str(), "r");
    long kb = 0;
    if (p && std::fscanf(p, "%ld", &kb) == 1) {
    }
    if (p) pclose(p);
    std::printf("    %-28s %8.1f MiB\n", std::string(mode) == "ckpt" ? "with gradient checkpointing" : "without checkpointing",
                static_cast<double>(kb) / 1024.0);
  }
  return 0;
}
