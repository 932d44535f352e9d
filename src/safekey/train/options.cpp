#include "safekey/train/options.h"

#include <functional>
#include <map>

#include "safekey/util/error.h"

namespace safekey::train {

namespace {

using config::Type;

template <class T> Type type_of();
template <> Type type_of<int64_t>() { return Type::Int; }
template <> Type type_of<double>() { return Type::Float; }
template <> Type type_of<bool>() { return Type::Bool; }
template <> Type type_of<std::string>() { return Type::String; }
template <> Type type_of<std::vector<std::string>>() { return Type::List; }

// The defaults of every option: a TrainConfig as constructed.
const TrainConfig& defaults() {
  static const TrainConfig c;
  return c;
}

// One row of the table: the option and, unless it is a flag only, how it reads and writes its
// TrainConfig field. Built with field()/flag_only() and the chained setters below.
struct Row {
  config::Option opt;
  std::function<void(TrainConfig&, const json&)> set;
  std::function<json(const TrainConfig&)> get;

  Row& aka(const char* a) { return opt.aliases = a, *this; }
  Row& run() { return opt.defines_run = true, *this; }
  Row& choices(const char* c) { return opt.choices = c, *this; }
  Row& env(const char* e) { return opt.env = e, *this; }
  Row& shared(const char* cmds) { return opt.shared_with = cmds, *this; }
  Row& json_key(const char* k) { return opt.json_key = k, *this; }
};

// A row bound to a TrainConfig field: its type and default come from the field.
template <class T>
Row field(T TrainConfig::*m, const char* key, const char* flag, const char* help) {
  Row r;
  r.opt.key = key;
  r.opt.flag = flag;
  r.opt.type = type_of<T>();
  r.opt.help = help;
  r.set = [m](TrainConfig& c, const json& v) { c.*m = v.get<T>(); };
  r.get = [m](const TrainConfig& c) { return json(c.*m); };
  r.opt.default_value = config::to_text(r.get(defaults()));
  return r;
}

// A command-line flag that is no training option (--config, --plan, ...).
Row flag_only(const char* flag, Type type, const char* default_value, const char* help) {
  Row r;
  r.opt.flag = flag;
  r.opt.type = type;
  r.opt.default_value = default_value;
  r.opt.help = help;
  return r;
}

const char* qmm_pass_name(QmmPass p) {
  return p == QmmPass::Truncated ? "truncated" : p == QmmPass::FullMasked ? "full" : "no_mask";
}

Row qmm_pass_row() {
  Row r;
  r.opt.key = "qmm_pass";
  r.opt.flag = "qmm-pass";
  r.opt.type = Type::String;
  r.opt.help = "how QMM runs: truncated (only [query_len, k_end), exact) or full (the reference's full-length "
               "masked pass)";
  r.set = [](TrainConfig& c, const json& v) { c.qmm_pass = v == "full" ? QmmPass::FullMasked : QmmPass::Truncated; };
  r.get = [](const TrainConfig& c) { return json(qmm_pass_name(c.qmm_pass)); };
  r.opt.default_value = qmm_pass_name(defaults().qmm_pass);
  return r;
}

using C = TrainConfig;

std::vector<Row> build_rows() {
  std::vector<Row> rows;
  auto section = [&](const char* name, std::vector<Row> rs) {
    for (auto& r : rs) r.opt.section = name, rows.push_back(std::move(r));
  };
  section("Model and data", {
    field(&C::model_dir, "model_dir", "model", "HF model folder (config.json + safetensors; train also needs "
          "tokenizer files)").aka("model_path,model_name_or_path").run().shared("loss"),
    field(&C::data_path, "data_path", "data", "training data: reference records (.json array / .jsonl), chat JSONL, "
          "or pre-tokenized JSONL (docs/training.md)").aka("data_path,train_file").run(),
    field(&C::output_dir, "output_dir", "output-dir", "run folder: resolved config, metrics.jsonl, checkpoints, "
          "loss curves").aka("output_dir"),
    field(&C::benign_sources, "benign_sources", "benign-sources", "comma-separated `source` values whose "
          "requests are benign (unsafe = 0); an explicit `unsafe` field wins").aka("benign-source").run().shared("annotate"),
    field(&C::skip_invalid, "skip_invalid", "skip-invalid", "skip invalid records (counted, and listed in JSON) "
          "instead of failing with every problem").run().shared("annotate"),
    field(&C::max_seq_len, "max_seq_len", "max-seq-len", "longest training sequence in tokens (docs/training.md: "
          "truncation policy)").aka("max_seq_len,model_max_length").run(),
    field(&C::shuffle, "shuffle", "shuffle", "shuffle the data each epoch (seeded)").run(),
    field(&C::seed, "seed", "seed", "random seed: initialisation of the safety head and LoRA, data order").run(),
  });
  section("Objectives (SPEC §4)", {
    field(&C::qmm, "qmm", "key-sentence-prediction", "Query-Mask Modeling objective (K loss with the query "
          "hidden)").aka("qmm").run(),
    field(&C::head, "head", "safety-head", "Dual-Path Safety Head objective").aka("safety_gate").run(),
    field(&C::key_weight, "key_weight", "key-sentence-weight", "weight of the QMM loss").aka("key_weight").run()
        .shared("loss"),
    field(&C::head_weight, "head_weight", "head-weight", "weight of the safety head loss").run().shared("loss"),
    field(&C::head_theta, "head_theta", "head-theta", "weight of C_head (U only); 1-theta weighs ctx_head "
          "(query + U)").run().shared("loss"),
    field(&C::last_k_epoch, "last_k_epoch", "last-k-epoch", "the SafeKey objectives run only in the last K "
          "epochs").run(),
    field(&C::head_detach, "head_detach", "detach-safety-head", "ablation: head on detached hidden states; its "
          "loss replaces the total loss (reference)").run().shared("loss"),
    field(&C::qmm_no_mask, "qmm_no_mask", "key-sentence-prediction-mask-ablation", "ablation: K loss without the "
          "query mask").aka("qmm_no_mask").run().shared("loss"),
    qmm_pass_row().choices("truncated|full").run().shared("loss"),
  });
  section("Optimisation", {
    field(&C::epochs, "epochs", "num-train-epochs", "training epochs").aka("n_epochs,epochs").run(),
    field(&C::batch_size, "batch_size", "per-device-train-batch-size", "micro-batch size (rows per forward, per "
          "rank)").aka("train_bsz_per_gpu,batch_size").run(),
    field(&C::grad_accum, "grad_accum", "gradient-accumulation-steps", "micro-batches per optimizer step (per "
          "rank)").run(),
    field(&C::lr, "lr", "learning-rate", "peak learning rate").aka("lr").run(),
    field(&C::weight_decay, "weight_decay", "weight-decay", "AdamW decoupled weight decay (not on biases and norm "
          "weights)").run(),
    field(&C::beta1, "beta1", "adam-beta1", "AdamW beta1").run(),
    field(&C::beta2, "beta2", "adam-beta2", "AdamW beta2").run(),
    field(&C::eps, "eps", "adam-epsilon", "AdamW epsilon").run(),
    field(&C::warmup_ratio, "warmup_ratio", "warmup-ratio", "share of optimizer steps with linear warm-up before "
          "the cosine decay").aka("warmup_rates").run(),
    field(&C::scheduler, "scheduler", "lr-scheduler-type", "learning-rate schedule after the warm-up: cosine or "
          "constant").choices("cosine|constant").run(),
    field(&C::max_grad_norm, "max_grad_norm", "max-grad-norm", "clip the global gradient norm to this value (0 = "
          "no clipping, as the reference)").run(),
    field(&C::max_steps, "max_steps", "max-steps", "stop after this many optimizer steps (-1 = run all epochs); "
          "the schedule still spans all epochs"),
    field(&C::reference_compat, "reference_compat", "reference-compat", "reproduce the reference quirks: head "
          "biases not optimised, no-decay only on names with 'bias'/'LayerNorm.weight', left truncation").run(),
  });
  section("Precision and memory", {
    field(&C::dtype, "dtype", "dtype", "training precision: auto (bf16 with fp32 master weights on CUDA, fp32 on "
          "CPU), float32, bfloat16").choices("auto|float32|bfloat16").run(),
    field(&C::device, "device", "device", "compute device: cpu, cuda, cuda:N").env("SAFEKEY_DEVICE").run(),
    field(&C::gradient_checkpointing, "gradient_checkpointing", "gradient-checkpointing", "recompute each decoder "
          "layer in backward (less memory, same gradients)").run().shared("loss"),
    field(&C::loss_chunk_tokens, "loss_chunk_tokens", "loss-chunk-tokens", "chunked cross-entropy: the LM head "
          "and loss run over at most this many target tokens at a time, recomputed in backward, so [tokens x "
          "vocab] logits never exist at once (0 = one pass; same loss and gradients)"),
  });
  section("LoRA (docs/lora.md)", {
    field(&C::lora_r, "lora.r", "lora-r", "LoRA rank; > 0 trains adapters on a frozen base instead of the whole "
          "model").run(),
    field(&C::lora_alpha, "lora.alpha", "lora-alpha", "LoRA alpha: the adapter's scale is alpha / r (alpha / "
          "sqrt(r) with use_rslora)").run(),
    field(&C::lora_dropout, "lora.dropout", "lora-dropout", "dropout on the adapters' input while training").run(),
    field(&C::lora_target_modules, "lora.target_modules", "lora-target-modules", "the Linear modules that get "
          "adapters: names (q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj) or all-linear").run(),
    field(&C::use_rslora, "lora.use_rslora", "use-rslora", "rank-stabilised LoRA: scale alpha / sqrt(r)").run()
        .json_key("use_rslora"),
  });
  section("Ranks (docs/distributed.md)", {
    field(&C::zero_stage, "zero_stage", "zero-stage", "ZeRO stage under a launcher: 0 (replicated optimizer "
          "state), 1 (state partitioned over ranks), 2 (state and gradients partitioned), 3 (also the decoder "
          "layers' parameters, gathered around each use)").aka("zero_stage").run(),
    field(&C::dist_backend, "dist.backend", "dist-backend", "c10d backend when launched with several ranks: auto "
          "(nccl on CUDA, gloo on the CPU), gloo, nccl").choices("auto|gloo|nccl"),
    field(&C::dist_timeout_s, "dist.timeout_s", "dist-timeout", "seconds a rank waits for the rendezvous and for "
          "each collective before failing (a peer that never arrives or died)").env("SAFEKEY_DIST_TIMEOUT"),
    field(&C::dist_bucket_mb, "dist.bucket_mb", "dist-bucket-mb", "size of the flat gradient buckets (all-reduce, "
          "reduce-scatter, all-gather) in MiB"),
    field(&C::zero3_prefetch, "zero3_prefetch", "zero3-prefetch", "ZeRO-3: start gathering the next layer while "
          "the current one computes (--no-zero3-prefetch: one layer at a time, less memory)"),
  });
  section("Checkpoints and resume", {
    field(&C::save_steps, "save_steps", "save-steps", "checkpoint every N optimizer steps (0 = only at epoch "
          "ends)"),
    field(&C::save_dtype, "save_dtype", "save-dtype", "dtype of the checkpoints' HF weights: auto (the training "
          "dtype: bf16 on CUDA), float32, bfloat16; written shard by shard (5 GB shards, HF's layout)")
        .choices("auto|float32|bfloat16"),
    field(&C::save_total_limit, "save_total_limit", "save-total-limit", "keep at most N checkpoints (0 = keep "
          "all)").aka("max_ckpts"),
    field(&C::resume, "resume", "resume", "continue from the newest checkpoint in --output-dir"),
    field(&C::resume_from, "resume_from", "resume-from-checkpoint", "continue from this checkpoint folder"),
    field(&C::resume_allow_data_change, "resume_allow_data_change", "resume-allow-data-change", "resume even "
          "when the training data, its epoch order, the tokenizer or the chat template changed since the "
          "checkpoint (otherwise an error that says what changed)"),
  });
  section("Logging", {
    field(&C::logging_steps, "logging_steps", "logging-steps", "print a progress line every N optimizer steps"),
    field(&C::plot_steps, "plot_steps", "plot-steps", "rewrite loss_curves.svg every N optimizer steps while "
          "training (-1 = every logging_steps, 0 = only at the end)"),
  });
  Row config = flag_only("config", Type::String, "", "YAML or JSON config file of option keys (nested or "
                         "dotted: lora.r) or flag names; repeatable, later files win; flags and key=value "
                         "overrides after it win over it (docs/training.md)");
  config.opt.repeatable = true;
  section("Command line only", {
    config,
    flag_only("print-options-markdown", Type::Bool, "false", "print the options table of docs/training.md "
              "(generated from the option schema) and exit"),
    flag_only("plan", Type::Bool, "false", "print the memory plan per rank (parameters, gradients, optimizer "
              "state, activations, logits chunk, buffers) and whether it fits --device-memory-gb; no training, "
              "--model needs only config.json"),
    flag_only("world-size", Type::Int, "", "--plan: ranks to plan for (default: $WORLD_SIZE, else 1)"),
    flag_only("device-memory-gb", Type::Float, "80", "--plan: memory of one device in GiB"),
    flag_only("plan-attention", Type::String, "auto", "--plan: attention kernel to plan for: fused (libtorch 2.x "
              "scaled_dot_product_attention), math (explicit seq x seq probabilities, libtorch 1.x), auto (this "
              "build's)").choices("auto|fused|math"),
  });
  return rows;
}

struct Table {
  std::vector<Row> rows = build_rows();
  config::Schema schema = config::Schema([this] {
    std::vector<config::Option> o;
    for (const auto& r : rows) o.push_back(r.opt);
    return o;
  }());
  const Row& row(const std::string& key) const {
    for (const auto& r : rows)
      if (r.opt.key == key && r.get) return r;
    fail("internal: no training option with the key '", key, "'");
  }
};

const Table& table() {
  static const Table t;
  return t;
}

}  // namespace

const config::Schema& train_schema() { return table().schema; }

void apply_values(const config::Values& values, TrainConfig& c) {
  for (const auto& r : table().rows)
    if (r.set) r.set(c, values.get(r.opt.key));
}

json option_value(const TrainConfig& c, const std::string& key) { return table().row(key).get(c); }

json TrainConfig::to_json() const {
  json j = json::object();
  for (const auto& r : table().rows)
    if (r.opt.defines_run) j[config::run_key(r.opt)] = r.get(*this);
  if (!examples.empty()) j["data_path"] = "<in-process examples>";
  j["num_examples_in_process"] = examples.size();
  return j;
}

}  // namespace safekey::train
