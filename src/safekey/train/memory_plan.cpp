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

namespace {

// Parameter counts the plan is built from (elements).
struct Counts {
  double N = 0;              // every parameter (with the safety head)
  double layers = 0;         // the decoder layers' (ZeRO-3 shards these)
  double largest_layer = 0;  // one gathered layer
  double outer = 0;          // the rest, kept whole: embeddings, final norm, LM head, safety head
  double T = 0;              // LoRA: the adapters' trainable parameters (0 = full fine-tuning)
};

Counts count_parameters(const PlanInput& in) {
  const auto& m = in.model;
  Counts c;
  std::map<std::string, double> units;
  for (const auto& s : m.parameter_shapes()) {
    const double k = static_cast<double>(numel(s.shape));
    c.N += k;
    const auto pos = s.name.find(".layers.");
    if (pos == std::string::npos) continue;
    c.layers += k;
    units[s.name.substr(0, s.name.find('.', pos + 8))] += k;
  }
  for (const auto& [name, k] : units) c.largest_layer = std::max(c.largest_layer, k);
  if (in.safety_head) c.N += 2 * (static_cast<double>(m.hidden_size) + 1);
  c.outer = c.N - c.layers;
  // LoRA: r·(in + out) per adapted Linear, fp32; the base is frozen.
  if (in.lora_r > 0) {
    SK_CHECK(in.zero_stage < 3, "plan: LoRA runs at ZeRO stage 0-2 (the adapters are small; the base is not sharded)");
    const std::string suffix = ".weight";
    for (const auto& sh : m.parameter_shapes()) {
      const auto& n = sh.name;
      if (sh.shape.size() != 2 || n.find("embed_tokens") != std::string::npos) continue;
      const std::string path = n.substr(0, n.size() - suffix.size());
      if (in.lora_targets && in.lora_targets(path))
        c.T += static_cast<double>(in.lora_r) * static_cast<double>(sh.shape[0] + sh.shape[1]);
    }
    SK_CHECK(c.T > 0, "plan: no Linear module matches the LoRA target modules");
  }
  return c;
}

void add_line(MemoryPlan& p, const std::string& what, double bytes, const std::string& formula) {
  p.lines.push_back({what, bytes, formula});
  p.total_bytes += bytes;
}

// Lines 0-2: parameters, gradients and optimizer state, per ZeRO stage (or LoRA).
void add_model_state(MemoryPlan& p, const PlanInput& in, const Counts& c) {
  const double W = in.world_size, e = in.dtype == "bfloat16" ? 2 : 4;
  const int z = in.zero_stage;
  const bool lora = c.T > 0;
  const double N = c.N, T = c.T;
  if (lora) add_line(p, "parameters (frozen base + fp32 adapters)", N * e + T * 4, cat("N·", e, " + T·4 (T = ", static_cast<int64_t>(T), " adapter parameters)"));
  else if (z < 3) add_line(p, "parameters", N * e, cat("N·", e, " (N = ", static_cast<int64_t>(N), ")"));
  else {
    const double gathered = in.zero3_prefetch ? 2 : 1;  // the layer in use (+ the next one, prefetched)
    add_line(p, in.zero3_prefetch ? "parameters (layer slices + two gathered layers + the rest whole)"
                                  : "parameters (layer slices + one gathered layer + the rest whole)",
             c.layers * e / W + gathered * c.largest_layer * e + c.outer * e,
             cat("layers·", e, "/W + ", in.zero3_prefetch ? "2 layers·" : "a layer·", e, " + (embeddings, norm, LM head, head)·", e));
  }
  if (lora) add_line(p, "gradients (adapters)", T * 4, "T·4");
  else if (z <= 1) add_line(p, "gradients", N * e, cat("N·", e));
  else if (z == 2)
    add_line(p, "gradients (one backward's full + fp32 shard)", N * e + N * 4 / W, cat("N·", e, " + N·4/W"));
  else add_line(p, "gradients (fp32 slices + one layer + the rest whole)", N * 4 / W + c.largest_layer * e + c.outer * e,
                cat("N·4/W + a layer·", e, " + (embeddings, norm, LM head, head)·", e));
  // Optimizer state: fp32 moments (and fp32 master weights for bf16 parameters).
  const double per = e < 4 ? 12 : 8;
  if (lora) add_line(p, "optimizer state (adapters: fp32 moments, no master copy)", T * 8 / (z >= 1 ? W : 1), cat("T·8", z >= 1 ? "/W" : ""));
  else add_line(p, "optimizer state", N * per / (z >= 1 ? W : 1), cat("N·", per, z >= 1 ? "/W" : ""));
}

// Line 3: activations of one micro-batch: the SFT pass, then the QMM pass while the SFT graph is alive.
void add_activations(MemoryPlan& p, const PlanInput& in) {
  const auto& m = in.model;
  const double e = in.dtype == "bfloat16" ? 2 : 4;
  const int64_t L = m.num_hidden_layers;
  const double H = static_cast<double>(m.hidden_size), rows = static_cast<double>(in.batch_size);
  auto model_acts = [&](int64_t seq, bool ckpt) {
    const double per_layer = layer_activation_bytes(in, in.batch_size, seq);
    const double n = rows * static_cast<double>(seq);
    const double outer = 3 * n * H * e;  // embedding output, final norm input and output
    return ckpt ? static_cast<double>(L) * n * H * e + per_layer + outer : static_cast<double>(L) * per_layer + outer;
  };
  const int64_t qseq = std::min(in.qmm_tokens, in.seq_len);
  p.activations_without_ckpt = model_acts(in.seq_len, false) + (qseq > 0 ? model_acts(qseq, false) : 0);
  p.activations_with_ckpt = model_acts(in.seq_len, true) + (qseq > 0 ? model_acts(qseq, true) : 0);
  const bool recompute = in.gradient_checkpointing || in.zero_stage == 3;  // ZeRO-3 layers always recompute
  add_line(p, recompute ? "activations (checkpointed)" : "activations",
           recompute ? p.activations_with_ckpt : p.activations_without_ckpt,
           cat("batch ", in.batch_size, " x seq ", in.seq_len, " (+ QMM ", qseq, " tokens/row); ",
               recompute ? "layer inputs + one layer" : "every layer",
               in.fused_attention ? ", fused attention" : ", math attention (seq² probabilities)"));
}

// Line 4: the cross-entropy's logits: the LM head's output, its float32 copy, log-softmax and its
// gradient. Line 5 (more than one rank, or ZeRO): a flat bucket and its reduced / gathered copy.
void add_logits_and_buffers(MemoryPlan& p, const PlanInput& in, const Counts& c) {
  const auto& m = in.model;
  const double e = in.dtype == "bfloat16" ? 2 : 4;
  const double targets = static_cast<double>(in.batch_size) * static_cast<double>(in.seq_len) * in.target_fraction;
  const double chunk = in.loss_chunk_tokens > 0 ? std::min(targets, static_cast<double>(in.loss_chunk_tokens)) : targets;
  add_line(p, "logits chunk", chunk * static_cast<double>(m.vocab_size) * (e + 4 + 4 + 4 - (e < 4 ? 0 : 4)),
           cat(static_cast<int64_t>(chunk), " targets x vocab ", m.vocab_size,
               in.loss_chunk_tokens > 0 ? " (--loss-chunk-tokens)" : " (one pass)"));
  const double reduced = c.T > 0 ? c.T * 4 : c.N * e;  // what the collectives carry
  if (in.world_size > 1 || in.zero_stage > 0)
    add_line(p, "communication buffers", 2 * static_cast<double>(std::min<int64_t>(in.bucket_bytes, static_cast<int64_t>(reduced))),
             "2 x --dist-bucket-mb");
}

// The peak, as this implementation allocates (checked against counted allocations: bench_plan).
// Stages 0-2: the gradients are .grad tensors that autograd creates during backward while the
// activations and logits are still alive; the reductions and their buffers come after backward,
// when the activations are gone; at stage 2 the fp32 slices of earlier micro-batches persist with
// gradient accumulation. Stage 3: the layers' gradients go to fp32 slices during backward (one
// gathered layer and its gradients at a time); the whole-kept rest's gradients, its reductions and
// buffers come after backward.
double peak_bytes(const MemoryPlan& p, const PlanInput& in, const Counts& c) {
  const double e = in.dtype == "bfloat16" ? 2 : 4, W = in.world_size;
  const int z = in.zero_stage;
  const double P = p.lines[0].bytes, O = p.lines[2].bytes, A = p.lines[3].bytes, Lg = p.lines[4].bytes;
  const double B = p.lines.size() > 5 ? p.lines[5].bytes : 0.0;
  const double slices = c.N * 4 / W;
  if (c.T > 0) return P + O + std::max(A + Lg + c.T * 4, c.T * 4 + B);  // adapters' gradients during backward
  if (z < 3) {
    const double during = A + Lg + c.N * e + (z == 2 && in.grad_accum > 1 ? slices : 0.0);
    const double after = c.N * e + (z == 2 ? slices : 0.0) + B;
    return P + O + std::max(during, after);
  }
  const double during = A + Lg + slices + 2 * c.largest_layer * e;
  const double after = c.outer * e + slices + B;
  return P + O + std::max(during, after);
}

}  // namespace

MemoryPlan plan_memory(const PlanInput& in) {
  SK_CHECK(in.world_size >= 1, "--plan: --world-size must be >= 1");
  SK_CHECK(in.zero_stage >= 0 && in.zero_stage <= 3, "--plan: --zero-stage must be 0..3");
  SK_CHECK(in.dtype == "float32" || in.dtype == "bfloat16", "--plan: --dtype must be float32 or bfloat16");
  SK_CHECK(in.batch_size >= 1 && in.seq_len >= 1, "--plan: batch size and sequence length must be >= 1");
  const Counts c = count_parameters(in);
  MemoryPlan p;
  p.parameters = static_cast<int64_t>(c.N);
  p.trainable = static_cast<int64_t>(c.T);
  add_model_state(p, in, c);
  add_activations(p, in);
  add_logits_and_buffers(p, in, c);
  p.total_bytes = peak_bytes(p, in, c);
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
