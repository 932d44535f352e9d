// bench_dist: data-parallel training on this machine (figures for BENCHMARKS.md, "Multi-process
// training"). One thread per rank; the same global batch at every world size (W ranks × b rows ×
// a accumulation with W·a fixed). Reports, per world size and ZeRO stage: tokens/s over the
// measured steps (the first step is warm-up), the share of a step rank 0 spends in collectives
// (`comm_s` / `step_s` from metrics.jsonl), and the per-rank optimizer-state bytes
// (distributed.json).
// Usage: bench_dist [--hidden 256] [--layers 4] [--vocab 4096] [--seq 256] [--steps 6] [--global-micro 4]
#include <torch/version.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include "common.h"
#include "safekey/model/decoder.h"
#include "safekey/tensor/runtime.h"
#include "safekey/train/metrics.h"
#include "safekey/util/file.h"
#include "safekey/util/json.h"

using namespace safekey;

namespace {

struct Opts {
  int64_t hidden = 256, layers = 4, vocab = 4096, seq = 256, steps = 6, global_micro = 4;
};

std::string make_model(const Opts& o, const std::string& dir) {
  make_dirs(dir);
  model::DecoderModel m(bench::qwen2_config(o.hidden, o.layers, o.vocab, o.hidden / 32, std::max<int64_t>(1, o.hidden / 64)));
  model::init_weights(m, 3);
  model::save_model(m, dir);
  return dir;
}

std::string make_data(const Opts& o, const std::string& path, int64_t rows) {
  std::mt19937_64 rng(9);
  std::string out;
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<int64_t> ids;
    for (int64_t t = 0; t < o.seq; ++t) ids.push_back(static_cast<int64_t>(rng() % static_cast<uint64_t>(o.vocab - 2)));
    const int64_t q = o.seq / 5;
    out += json{{"input_ids", ids}, {"query_len", q}, {"k_begin", q + o.seq / 10}, {"k_end", q + o.seq / 10 + 8},
                {"unsafe", static_cast<int>(r % 2)}}
               .dump() +
           "\n";
  }
  write_file_atomic(path, out);
  return path;
}

}  // namespace

int main(int argc, char** argv) {
  Opts o;
  if (!bench::parse_int_flags(argc, argv, {{"--hidden", &o.hidden}, {"--layers", &o.layers}, {"--vocab", &o.vocab},
                                           {"--seq", &o.seq}, {"--steps", &o.steps}, {"--global-micro", &o.global_micro}}))
    return 2;
  runtime::set_threads(1);
  const std::string dir = "/tmp/safekey-bench-dist-" + std::to_string(getpid());
  const std::string model = make_model(o, dir + "/model");
  const int64_t batch = 2;
  const std::string data = make_data(o, dir + "/data.jsonl", batch * o.global_micro * (o.steps + 1));
  const std::string safekey = bench::exe_dir() + "/safekey";
  std::printf("bench_dist: hidden %lld, layers %lld, vocab %lld, %lld tokens per row, %lld rows per step, "
              "%lld steps (first one not measured); ranks: 1 thread each, safekey train's defaults; %s\n",
              static_cast<long long>(o.hidden), static_cast<long long>(o.layers), static_cast<long long>(o.vocab),
              static_cast<long long>(o.seq), static_cast<long long>(batch * o.global_micro),
              static_cast<long long>(o.steps), TORCH_VERSION);
  std::printf("| ranks | ZeRO | tokens/s | comm share of a step | optimizer state per rank (MiB) |\n|---|---|---|---|---|\n");
  for (int W : {1, 2}) {
    for (int stage : {0, 1, 2}) {
      if (W == 1 && stage > 0) continue;
      const std::string out = dir + "/run-w" + std::to_string(W) + "-z" + std::to_string(stage);
      const std::string cmd =
          "SAFEKEY_THREADS=1 " + safekey + " launch --nproc-per-node " + std::to_string(W) +
          " --master-port 0 -- safekey train --model " + model + " --data " + data + " --output-dir " + out +
          " --num-train-epochs 1 --per-device-train-batch-size " + std::to_string(batch) +
          " --gradient-accumulation-steps " + std::to_string(o.global_micro / W) + " --zero-stage " +
          std::to_string(stage) + " --key-sentence-prediction --safety-head --last-k-epoch 1 --max-steps " +
          std::to_string(o.steps) + " > " + out + ".log 2>&1";
      if (std::system(cmd.c_str()) != 0) {
        std::fprintf(stderr, "run failed: %s (see %s.log)\n", cmd.c_str(), out.c_str());
        return 1;
      }
      auto ms = train::read_metrics(out + "/metrics.jsonl");
      double tok = 0, secs = 0, comm = 0;
      for (size_t i = 1; i < ms.size(); ++i) {
        tok += static_cast<double>(ms[i].tokens);
        secs += ms[i].step_s;
        comm += ms[i].comm_s;
      }
      const json d = read_json_file(out + "/distributed.json");
      const double bytes = d["optimizer_state_bytes_per_rank"][0].get<double>();
      std::printf("| %d | %d | %.0f | %.1f%% | %.2f |\n", W, stage, tok / secs, 100.0 * comm / secs,
                  bytes / 1048576.0);
      std::fflush(stdout);
    }
  }
  std::system(("rm -rf " + dir).c_str());
  return 0;
}
