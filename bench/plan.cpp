// bench_plan: `safekey train --plan` next to measured memory (figures for BENCHMARKS.md, "Memory
// plan vs measured"). Each configuration trains a few SafeKey steps (QMM + safety head) on the CPU
// in float32 under `safekey launch` with SAFEKEY_MEMORY_METER=1, which counts every byte libtorch
// allocates on the training thread (tensor/memory_meter.h); the peak per rank is compared with the
// plan's total for the same model, batch, sequence, world size, stage and checkpointing.
// Also: the bytes held once loaded (rank 0) and the mean step time after the first step; two rows
// train LoRA adapters (all-linear) on the frozen model instead.
// Usage: bench_plan [--hidden 512] [--layers 6] [--vocab 16000] [--seq 256] [--steps 2]
#include <torch/version.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <sstream>
#include <string>

#include "common.h"
#include "safekey/lora/peft.h"
#include "safekey/model/decoder.h"
#include "safekey/train/memory_plan.h"
#include "safekey/util/file.h"
#include "safekey/util/json.h"

using namespace safekey;

namespace {

struct Opts {
  int64_t hidden = 512, layers = 6, vocab = 16000, seq = 256, steps = 2;
};

}  // namespace

int main(int argc, char** argv) {
  Opts o;
  if (!bench::parse_int_flags(argc, argv, {{"--hidden", &o.hidden}, {"--layers", &o.layers}, {"--vocab", &o.vocab},
                                           {"--seq", &o.seq}, {"--steps", &o.steps}}))
    return 2;
  const std::string dir = "/tmp/safekey-bench-plan-" + std::to_string(getpid());
  const auto cfg = bench::qwen2_config(o.hidden, o.layers, o.vocab, o.hidden / 64, std::max<int64_t>(1, o.hidden / 256));
  {
    make_dirs(dir + "/model");
    model::DecoderModel m(cfg);
    model::init_weights(m, 3);
    model::save_model(m, dir + "/model");
  }
  const int64_t batch = 2, q = o.seq / 5, kb = q + o.seq / 10, ke = kb + 8;
  {
    std::mt19937_64 rng(9);
    std::string out;
    for (int64_t r = 0; r < 64; ++r) {
      std::vector<int64_t> ids;
      for (int64_t t = 0; t < o.seq; ++t) ids.push_back(static_cast<int64_t>(rng() % static_cast<uint64_t>(o.vocab - 2)));
      out += json{{"input_ids", ids}, {"query_len", q}, {"k_begin", kb}, {"k_end", ke}, {"unsafe", static_cast<int>(r % 2)}}
                 .dump() +
             "\n";
    }
    write_file_atomic(dir + "/data.jsonl", out);
  }
  std::printf("bench_plan: %s, %lld parameters; micro-batch %lld x %lld tokens (QMM %lld tokens/row), float32 on "
              "the CPU, libtorch %s\n",
              cfg.summary().c_str(), static_cast<long long>(cfg.num_parameters()), static_cast<long long>(batch),
              static_cast<long long>(o.seq), static_cast<long long>(ke - q), TORCH_VERSION);
  std::printf("| ranks | ZeRO | checkpointing | plan (MiB) | measured peak, rank 0 (MiB) | plan / measured | loaded, rank 0 (MiB) | optimizer state, rank 0 (MiB) | step (s) |\n"
              "|---|---|---|---|---|---|---|---|---|\n");
  const std::string safekey = bench::exe_dir() + "/safekey";
  struct Case {
    int W, z;
    bool ckpt;
    int64_t lora_r = 0;  // > 0: LoRA on all-linear (the base frozen)
  };
  for (Case c : {Case{1, 0, false}, Case{1, 0, true}, Case{1, 0, true, 16}, Case{2, 0, false}, Case{2, 1, false},
                 Case{2, 2, false}, Case{2, 2, true}, Case{2, 3, false}, Case{2, 0, true, 16}, Case{4, 0, true},
                 Case{4, 1, true}, Case{4, 2, true}, Case{4, 3, true}}) {
    const std::string out = dir + "/run-" + std::to_string(c.W) + "-" + std::to_string(c.z) + (c.ckpt ? "-ck" : "") +
                            (c.lora_r ? "-lora" : "");
    const std::string cmd = "SAFEKEY_MEMORY_METER=1 SAFEKEY_THREADS=1 " + safekey + " launch --nproc-per-node " +
                            std::to_string(c.W) + " --master-port 0 -- safekey train --model " + dir +
                            "/model --data " + dir + "/data.jsonl --output-dir " + out +
                            " --num-train-epochs 1 --per-device-train-batch-size " + std::to_string(batch) +
                            " --gradient-accumulation-steps 1 --key-sentence-prediction --safety-head --last-k-epoch 1"
                            " --max-steps " + std::to_string(o.steps) + " --zero-stage " + std::to_string(c.z) +
                            (c.ckpt ? " --gradient-checkpointing" : "") +
                            (c.lora_r ? " --lora-target-modules all-linear --lora-r " + std::to_string(c.lora_r) : "") +
                            " > " + out + ".log 2>&1";
    if (std::system(cmd.c_str()) != 0) {
      std::fprintf(stderr, "run failed: see %s.log\n", out.c_str());
      return 1;
    }
    const json mem = read_json_file(out + "/memory.json");
    const double measured = mem["cpu_peak_bytes_per_rank"][0].get<double>();
    const double loaded = mem["cpu_peak_after_load_bytes_per_rank"][0].get<double>();
    const double opt_state = read_json_file(out + "/distributed.json")["optimizer_state_bytes_per_rank"][0].get<double>();
    // Step time: the mean over the steps after the first (which also pays for the first allocations).
    double step_s = 0;
    int64_t n = 0;
    std::istringstream lines(read_file(out + "/metrics.jsonl"));
    for (std::string line; std::getline(lines, line);) {
      if (line.empty()) continue;
      const json m = json::parse(line);
      if (m["step"].get<int64_t>() == 1 && o.steps > 1) continue;
      step_s += m["step_s"].get<double>();
      ++n;
    }
    step_s /= static_cast<double>(std::max<int64_t>(1, n));
    train::PlanInput in;
    in.model = cfg;
    in.world_size = c.W;
    in.zero_stage = c.z;
    in.dtype = "float32";
    in.batch_size = batch;
    in.seq_len = o.seq;
    in.target_fraction = static_cast<double>(o.seq - q) / static_cast<double>(o.seq);
    in.qmm_tokens = ke - q;
    in.gradient_checkpointing = c.ckpt;
    in.fused_attention = TORCH_VERSION_MAJOR >= 2;
    in.cuda = false;
    lora::LoraConfig lc;
    lc.target_modules = {"all-linear"};
    in.lora_r = c.lora_r;
    in.lora_targets = [lc](const std::string& path) { return lora::targets(lc, path); };
    const auto p = train::plan_memory(in);
    std::printf("| %d | %s | %s | %.1f | %.1f | %.2f | %.1f | %.1f | %.2f |\n", c.W,
                (std::to_string(c.z) + (c.lora_r ? " + LoRA r=" + std::to_string(c.lora_r) : "")).c_str(), c.ckpt ? "yes" : "no",
                p.total_bytes / 1048576.0, measured / 1048576.0, p.total_bytes / measured, loaded / 1048576.0,
                opt_state / 1048576.0, step_s);
    std::fflush(stdout);
  }
  std::system(("rm -rf " + dir).c_str());
  return 0;
}
