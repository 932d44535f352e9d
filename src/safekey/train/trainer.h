// The SafeKey trainer as a C++ API: `safekey train` (apps/safekey/cmd_train.cpp) and the toy-world
// demo call run_training(). Every feature and the TrainConfig field (= the flag) that controls it:
//   objectives  SFT always; Query-Mask Modeling (qmm), Dual-Path Safety Head (head), only in the last
//               last_k_epoch epochs; weights key_weight / head_weight, head_theta; ablations
//               qmm_no_mask, head_detach; qmm_pass (truncated = exact and cheap, full = reference)
//   optimiser   AdamW(lr, beta1, beta2, eps, weight_decay) with param groups, cosine schedule with
//               warmup_ratio, gradient_accumulation_steps, max_grad_norm, seed, reference_compat
//   memory      gradient_checkpointing; dtype (bf16 + fp32 master weights on CUDA, fp32 on CPU)
//   ranks       data parallel over the launcher's process group (dist/), zero_stage 0-3, dist_backend,
//               dist_timeout_s, dist_bucket_mb, zero3_prefetch (docs/distributed.md); one process = a world of one
//   runs        output_dir with run_config.json, metrics.jsonl, loss_curves.svg (rewritten every
//               plot_steps); checkpoints every save_steps and at epoch ends, save_total_limit;
//               resume / resume_from (exact on CPU; refused when the data changed unless
//               resume_allow_data_change)
// Every field that is an option of `safekey train` is a row of the option table (train/options.h),
// which also gives its flag, config key, default and whether it defines the run (to_json).
// docs/training.md describes the step, truncation, the checkpoint layout and resume guarantees.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "safekey/data/example.h"
#include "safekey/train/metrics.h"
#include "safekey/train/objectives/query_mask_loss.h"
#include "safekey/util/json.h"

namespace safekey::train {

struct TrainConfig {
  std::string model_dir;    // HF folder; tokenizer files there are copied into checkpoints
  std::string data_path;    // records or pre-tokenized JSONL (ignored when `examples` is non-empty)
  std::vector<data::TokenizedExample> examples;  // in-process data (the demo)
  std::string output_dir;

  int64_t epochs = 5;
  int64_t batch_size = 2;
  int64_t grad_accum = 8;
  double lr = 1e-5, weight_decay = 1e-4, beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double warmup_ratio = 0.05;
  std::string scheduler = "cosine";  // cosine | constant
  double max_grad_norm = 0;          // 0 = no clipping
  int64_t max_seq_len = 8192;
  int64_t max_steps = -1;            // stop early after this many optimizer steps

  bool qmm = false, head = false;
  double key_weight = 0.2, head_weight = 0.2, head_theta = 0.5;
  int64_t last_k_epoch = 2;
  bool head_detach = false, qmm_no_mask = false;
  QmmPass qmm_pass = QmmPass::Truncated;

  bool gradient_checkpointing = false;
  int64_t loss_chunk_tokens = 2048;  // chunked cross-entropy above this many targets (0 = one pass)
  bool reference_compat = false;
  std::string dtype = "auto";  // auto | float32 | bfloat16
  std::string device = "cpu";
  int64_t seed = 2002;
  bool shuffle = true;

  // Distribution: the process group comes from the launcher's environment (dist/env.h).
  int64_t zero_stage = 0;            // 0 | 1 | 2 | 3 (dist/sharded_adamw.h, zero3.h)
  std::string dist_backend = "auto"; // auto | gloo | nccl
  double dist_timeout_s = 600;       // rendezvous and every collective
  double dist_bucket_mb = 32;        // flat gradient / partition buckets
  bool zero3_prefetch = true;        // ZeRO-3: gather the next layer while the current one computes

  // LoRA (lora_r > 0, docs/lora.md): the base model frozen, adapters on the Linear modules named by
  // lora_target_modules (PEFT's names, or "all-linear") trained with the safety head; checkpoints
  // hold the adapter in PEFT's format instead of the model.
  int64_t lora_r = 0;                // 0 = full fine-tuning
  double lora_alpha = 8;             // scale = alpha / r (alpha / sqrt(r) with use_rslora)
  double lora_dropout = 0;
  std::vector<std::string> lora_target_modules = {"q_proj", "v_proj"};
  bool use_rslora = false;

  int64_t save_steps = 0;        // 0 = only at epoch ends
  std::string save_dtype = "auto";  // dtype of the saved HF weights: auto (the training dtype) | float32 | bfloat16
  int64_t save_total_limit = 0;  // 0 = keep all
  bool resume = false;           // from the newest checkpoint in output_dir
  std::string resume_from;       // from this checkpoint
  bool resume_allow_data_change = false;  // resume although the data fingerprint differs (data_fingerprint.h)
  int64_t logging_steps = 1;
  int64_t plot_steps = -1;       // rewrite loss_curves.svg every N steps (-1 = every logging_steps, 0 = at the end)

  bool skip_invalid = false;
  std::vector<std::string> benign_sources = {"4o_rewrite"};

  bool quiet = false;                                   // no progress lines on stderr
  std::function<void(const StepMetrics&)> on_step;      // called after every optimizer step
  json extra;  // saved beside the run (e.g. the CLI's resolved flags); not compared on resume

  // The settings that define the run: the option table's rows marked so (train/options.cpp), plus
  // num_examples_in_process. Saved as run_config.json and compared on resume.
  json to_json() const;
};

struct TrainResult {
  std::string output_dir;
  std::string last_checkpoint;  // checkpoint-N folder
  std::string model_dir;        // last_checkpoint/model: a loadable HF folder (full fine-tuning)
  std::string adapter_dir;      // last_checkpoint/adapter: a PEFT LoRA adapter (LoRA runs)
  int64_t steps = 0;            // optimizer steps done in total
  int64_t examples = 0;         // training examples after validation
  int rank = 0, world_size = 1; // this process in the job
  std::vector<StepMetrics> history;  // every step of the run, including steps before a resume
};

// Fails with the option's flag and the rule when a setting is out of range (run_training calls it
// first; the recipe tests call it on every file under recipes/).
void validate_config(const TrainConfig& config);

TrainResult run_training(const TrainConfig& config);

}  // namespace safekey::train
