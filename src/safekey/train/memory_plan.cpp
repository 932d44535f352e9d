#include "safekey/train/memory_plan.h"

#include <algorithm>
#include <cstdio>
#include <map>

#include "safekey/util/error.h"

namespace safekey::train {

namespace {

constexpr double GiB = 1024.0 * 1024.0 * 1024.0;

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string gib(double b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", b / GiB);
  return buf;
}

}  // namespace

// Saved for backward per decoder layer (elements; e = element size of the compute dtype), for
// n = batch·seq tokens, following layers.cpp:
//   RMSNorm x2: input and normalised output (+ a float32 copy of the input in bf16)   2·(2n·H·e [+ 4n·H])
//   q/k/v: rope keeps q, k and rotate_half(q, k); the contiguous q, k, v for the matmuls
//          3·n·(nh + kvh)·D·e + n·kvh·D·e; q_norm/k_norm (Qwen3) another n·(nh + kvh)·D·(e + 4)
//   attention probabilities (math path): batch·nh·seq²·4 (float32; + the e copy in bf16), none
//          with fused attention (its log-sum-exp: batch·nh·seq·4)
//   attention output before o_proj: n·nh·D·e
//   MLP: gate, silu(gate), up, silu·up: 4·n·I·e
double layer_activation_bytes(const PlanInput& in, int64_t batch, int64_t seq) {
  const auto& m = in.model;
  const double e = in.dtype == "bfloat16" ? 2 : 4;
  const double n = static_cast<double>(batch) * static_cast<double>(seq);
  const double H = static_cast<double>(m.hidden_size), I = static_cast<double>(m.intermediate_size);
  const double nh = static_cast<double>(m.num_attention_heads), kvh = static_cast<double>(m.num_key_value_heads);
  const double D = static_cast<double>(m.head_dim);
  double b = 2 * (2 * n * H * e + (e < 4 ? 4 * n * H : 0));
  b += 3 * n * (nh + kvh) * D * e + n * kvh * D * e;
  if (m.qk_norm) b += n * (nh + kvh) * D * (e + 4);
  if (in.fused_attention) b += static_cast<double>(batch) * nh * static_cast<double>(seq) * 4;
  else b += static_cast<double>(batch) * nh * static_cast<double>(seq) * static_cast<double>(seq) * (4 + (e < 4 ? e : 0));
  b += n * nh * D * e;
  b += 4 * n * I * e;
  return b;
}

MemoryPlan plan_memory(const PlanInput& in) {
  SK_CHECK(in.world_size >= 1, "--plan: --world-size must be >= 1");
  SK_CHECK(in.zero_stage >= 0 && in.zero_stage <= 3, "--plan: --zero-stage must be 0..3");
  SK_CHECK(in.dtype == "float32" || in.dtype == "bfloat16", "--plan: --dtype must be float32 or bfloat16");
  SK_CHECK(in.batch_size >= 1 && in.seq_len >= 1, "--plan: batch size and sequence length must be >= 1");
  const auto& m = in.model;
  const double W = in.world_size;
  const double e = in.dtype == "bfloat16" ? 2 : 4;
  const bool mixed = e < 4;
  MemoryPlan p;
  // ZeRO-3 (train/zero3.h) shards the decoder layers and gathers one at a time; the embeddings, the
  // final norm and the LM head (and the safety head) stay whole on every rank.
  double N = 0, layers = 0, largest_layer = 0;
  {
    std::map<std::string, double> units;
    for (const auto& s : m.parameter_shapes()) {
      const double k = static_cast<double>(numel(s.shape));
      N += k;
      const auto pos = s.name.find(".layers.");
      if (pos == std::string::npos) continue;
      layers += k;
      units[s.name.substr(0, s.name.find('.', pos + 8))] += k;
    }
    for (const auto& [name, k] : units) largest_layer = std::max(largest_layer, k);
  }
  if (in.safety_head) N += 2 * (static_cast<double>(m.hidden_size) + 1);
  const double outer = N - layers;
  p.parameters = static_cast<int64_t>(N);
  auto add = [&](const std::string& what, double bytes, const std::string& formula) {
    p.lines.push_back({what, bytes, formula});
    p.total_bytes += bytes;
  };
  const int z = in.zero_stage;
  const std::string Ns = cat(static_cast<int64_t>(N));
  // LoRA: T trainable adapter parameters, r·(in + out) per adapted Linear, fp32; the base is frozen.
  double T = 0;
  if (in.lora_r > 0) {
    SK_CHECK(z < 3, "plan: LoRA runs at ZeRO stage 0-2 (the adapters are small; the base is not sharded)");
    const std::string suffix = ".weight";
    for (const auto& sh : m.parameter_shapes()) {
      const auto& n = sh.name;
      if (sh.shape.size() != 2 || n.find("embed_tokens") != std::string::npos) continue;
      const std::string path = n.substr(0, n.size() - suffix.size());
      if (in.lora_targets && in.lora_targets(path))
        T += static_cast<double>(in.lora_r) * static_cast<double>(sh.shape[0] + sh.shape[1]);
    }
    SK_CHECK(T > 0, "plan: no Linear module matches the LoRA target modules");
    p.trainable = static_cast<int64_t>(T);
  }
  const bool lora = T > 0;
  // Parameters.
  if (lora) add("parameters (frozen base + fp32 adapters)", N * e + T * 4, cat("N·", e, " + T·4 (T = ", static_cast<int64_t>(T), " adapter parameters)"));
  else if (z < 3) add("parameters", N * e, cat("N·", e, " (N = ", Ns, ")"));
  else {
    const double gathered = in.zero3_prefetch ? 2 : 1;  // the layer in use (+ the next one, prefetched)
    add(in.zero3_prefetch ? "parameters (layer slices + two gathered layers + the rest whole)"
                          : "parameters (layer slices + one gathered layer + the rest whole)",
        layers * e / W + gathered * largest_layer * e + outer * e,
        cat("layers·", e, "/W + ", in.zero3_prefetch ? "2 layers·" : "a layer·", e, " + (embeddings, norm, LM head, head)·", e));
  }
  // Gradients.
  if (lora) add("gradients (adapters)", T * 4, "T·4");
  else if (z <= 1) add("gradients", N * e, cat("N·", e));
  else if (z == 2)
    add("gradients (one backward's full + fp32 shard)", N * e + N * 4 / W, cat("N·", e, " + N·4/W"));
  else add("gradients (fp32 slices + one layer + the rest whole)", N * 4 / W + largest_layer * e + outer * e,
           cat("N·4/W + a layer·", e, " + (embeddings, norm, LM head, head)·", e));
  // Optimizer state: fp32 moments (and fp32 master weights for bf16 parameters).
  const double per = mixed ? 12 : 8;
  if (lora) add("optimizer state (adapters: fp32 moments, no master copy)", T * 8 / (z >= 1 ? W : 1), cat("T·8", z >= 1 ? "/W" : ""));
  else add("optimizer state", N * per / (z >= 1 ? W : 1), cat("N·", per, z >= 1 ? "/W" : ""));
  // Activations of one micro-batch: the SFT pass, then the QMM pass while the SFT graph is alive.
  const int64_t L = m.num_hidden_layers;
  const double H = static_cast<double>(m.hidden_size);
  const double rows = static_cast<double>(in.batch_size);
  auto model_acts = [&](int64_t seq, bool ckpt) {
    const double per_layer = layer_activation_bytes(in, in.batch_size, seq);
    const double n = rows * static_cast<double>(seq);
    const double outer = 3 * n * H * e;  // embedding output, final norm input and output
    return ckpt ? static_cast<double>(L) * n * H * e + per_layer + outer : static_cast<double>(L) * per_layer + outer;
  };
  const int64_t qseq = std::min(in.qmm_tokens, in.seq_len);
  p.activations_without_ckpt = model_acts(in.seq_len, false) + (qseq > 0 ? model_acts(qseq, false) : 0);
  p.activations_with_ckpt = model_acts(in.seq_len, true) + (qseq > 0 ? model_acts(qseq, true) : 0);
  const bool recompute = in.gradient_checkpointing || z == 3;  // ZeRO-3 layers always recompute
  add(recompute ? "activations (checkpointed)" : "activations",
      recompute ? p.activations_with_ckpt : p.activations_without_ckpt,
      cat("batch ", in.batch_size, " x seq ", in.seq_len, " (+ QMM ", qseq, " tokens/row); ",
          recompute ? "layer inputs + one layer" : "every layer",
          in.fused_attention ? ", fused attention" : ", math attention (seq² probabilities)"));
  // Logits of the cross-entropy: the LM head's output, its float32 copy, log-softmax and its gradient.
  const double targets = rows * static_cast<double>(in.seq_len) * in.target_fraction;
  const double chunk = in.loss_chunk_tokens > 0 ? std::min(targets, static_cast<double>(in.loss_chunk_tokens)) : targets;
  const double V = static_cast<double>(m.vocab_size);
  add("logits chunk", chunk * V * (e + 4 + 4 + 4 - (mixed ? 0 : 4)),
      cat(static_cast<int64_t>(chunk), " targets x vocab ", m.vocab_size,
          in.loss_chunk_tokens > 0 ? " (--loss-chunk-tokens)" : " (one pass)"));
  // Communication buffers: a flat bucket and its reduced / gathered copy.
  const double reduced = lora ? T * 4 : N * e;  // what the collectives carry
  if (in.world_size > 1 || z > 0)
    add("communication buffers", 2 * static_cast<double>(std::min<int64_t>(in.bucket_bytes, static_cast<int64_t>(reduced))),
        "2 x --dist-bucket-mb");
  // The peak, as this implementation allocates (checked against counted allocations: bench_plan).
  // Stages 0-2: the gradients are .grad tensors that autograd creates during backward while the
  // activations and logits are still alive; the reductions and their buffers come after backward,
  // when the activations are gone; at stage 2 the fp32 slices of earlier micro-batches persist with
  // gradient accumulation. Stage 3: the layers' gradients go to fp32 slices during backward (one
  // gathered layer and its gradients at a time); the whole-kept rest's gradients, its reductions and
  // buffers come after backward.
  const double P = p.lines[0].bytes, O = p.lines[2].bytes, A = p.lines[3].bytes, Lg = p.lines[4].bytes;
  const double B = p.lines.size() > 5 ? p.lines[5].bytes : 0.0;
  const double slices = N * 4 / W;
  if (lora) {
    const double during = A + Lg + T * 4;  // the adapters' gradients appear during backward
    const double after = T * 4 + B;
    p.total_bytes = P + O + std::max(during, after);
  } else if (z < 3) {
    const double during = A + Lg + N * e + (z == 2 && in.grad_accum > 1 ? slices : 0.0);
    const double after = N * e + (z == 2 ? slices : 0.0) + B;
    p.total_bytes = P + O + std::max(during, after);
  } else {
    const double during = A + Lg + slices + 2 * largest_layer * e;
    const double after = outer * e + slices + B;
    p.total_bytes = P + O + std::max(during, after);
  }
  p.reserve_bytes = in.reserve_gb >= 0 ? in.reserve_gb * GiB
                    : in.cuda ? 1.5 * GiB + 0.05 * in.device_memory_gb * GiB
                              : 0.3 * GiB;
  p.fits = p.total_bytes + p.reserve_bytes <= in.device_memory_gb * GiB;
  return p;
}

std::string MemoryPlan::text() const {
  std::string s = "| per rank | bytes | how |\n|---|---|---|\n";
  for (const auto& l : lines) s += cat("| ", l.what, " | ", gib(l.bytes), " | ", l.formula, " |\n");
  s += cat("| peak | ", gib(total_bytes),
           " | parameters + optimizer state + the larger of forward/backward (activations, logits) and after "
           "backward (gradients, buffers); + reserve ", gib(reserve_bytes), " |\n");
  s += cat("activations per micro-batch: ", gib(activations_without_ckpt), " without checkpointing, ",
           gib(activations_with_ckpt), " with\n");
  return s;
}

json MemoryPlan::to_json() const {
  json j{{"total_bytes", total_bytes}, {"reserve_bytes", reserve_bytes}, {"fits", fits}, {"parameters", parameters},
         {"trainable_parameters", trainable > 0 ? trainable : parameters},
         {"activations_without_checkpointing", activations_without_ckpt},
         {"activations_with_checkpointing", activations_with_ckpt}};
  for (const auto& l : lines) j["lines"].push_back({{"what", l.what}, {"bytes", l.bytes}, {"formula", l.formula}});
  return j;
}

}  // namespace safekey::train
