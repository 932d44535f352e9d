// `safekey train --plan`: the bytes one rank needs to train a model, before any training, from the
// model's config.json alone: parameters, gradients, optimizer state, activations of one micro-batch
// (with and without gradient checkpointing), the cross-entropy's logits chunk and communication
// buffers, for a world size, ZeRO stage, dtype and batch shape; and whether it fits a device.
// The arithmetic follows this implementation (what the trainer allocates), not a generic rule:
// docs/distributed.md, "Memory plan", gives the formulas and the measured comparison.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "safekey/model/config.h"
#include "safekey/util/json.h"

namespace safekey::train {

struct PlanInput {
  model::ModelConfig model;
  int world_size = 1;
  int zero_stage = 0;            // 0..3
  std::string dtype = "bfloat16";  // parameters and compute: float32 | bfloat16 (fp32 master + moments)
  int64_t batch_size = 1;        // rows per micro-batch
  int64_t grad_accum = 1;        // micro-batches per optimizer step and rank
  int64_t seq_len = 8192;        // tokens per row
  double target_fraction = 1.0;  // share of the tokens that are SFT targets (the response)
  int64_t qmm_tokens = 512;      // tokens per row of the Query-Mask pass (U + K); 0 = QMM off
  bool safety_head = true;
  bool gradient_checkpointing = false;
  bool fused_attention = false;  // libtorch 2.x (scaled_dot_product_attention): no T x T probabilities
  int64_t loss_chunk_tokens = 2048;
  bool zero3_prefetch = true;    // stage 3: a second layer gathered ahead of use
  // LoRA (lora_r > 0): the base frozen in `dtype`; adapters (fp32) on the Linears whose HF module
  // path `lora_targets` accepts are what trains.
  int64_t lora_r = 0;
  std::function<bool(const std::string&)> lora_targets;
  int64_t bucket_bytes = 32LL << 20;
  double device_memory_gb = 80;
  double reserve_gb = -1;        // runtime + fragmentation reserve; < 0: 1.5 GB + 5% on CUDA, 0.3 GB on CPU
  bool cuda = true;
};

struct PlanLine {
  std::string what;
  double bytes = 0;
  std::string formula;
};

struct MemoryPlan {
  std::vector<PlanLine> lines;      // what one rank holds at its peak
  double total_bytes = 0;           // sum of lines (the peak)
  int64_t trainable = 0;            // LoRA: the adapters' parameters (0: every parameter trains)
  double reserve_bytes = 0;
  double activations_with_ckpt = 0, activations_without_ckpt = 0;
  int64_t parameters = 0;
  bool fits = false;
  std::string text() const;         // a table and the verdict line ("fits" / "does not fit")
  json to_json() const;
};

MemoryPlan plan_memory(const PlanInput& in);

// Activation bytes one decoder layer keeps for backward for `tokens` tokens in a micro-batch of
// `batch` rows (the eager path's saved tensors; see the .cpp), and those of the whole model.
double layer_activation_bytes(const PlanInput& in, int64_t batch, int64_t seq);

}  // namespace safekey::train
