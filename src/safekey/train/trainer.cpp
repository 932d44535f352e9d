#include "safekey/train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <random>

#include "safekey/dist/env.h"
#include "safekey/dist/process_group.h"
#include "safekey/dist/sharded_adamw.h"
#include "safekey/lora/peft.h"
#include "safekey/model/adapter.h"
#include "safekey/model/decoder.h"
#include "safekey/tensor/memory_meter.h"
#include "safekey/tensor/runtime.h"
#include "safekey/text/chat_template.h"
#include "safekey/train/batch.h"
#include "safekey/train/checkpoint.h"
#include "safekey/train/data_fingerprint.h"
#include "safekey/train/dataset.h"
#include "safekey/train/optim.h"
#include "safekey/train/step.h"
#include "safekey/train/zero3.h"
#include "safekey/util/error.h"
#include "safekey/util/file.h"

namespace safekey::train {

namespace {

using Clock = std::chrono::steady_clock;

// Deterministic example order of one epoch (Fisher-Yates over mt19937_64, whose output is fixed by
// the C++ standard, so the order is the same on every platform).
std::vector<int64_t> epoch_order(int64_t n, int64_t seed, int64_t epoch, bool shuffle) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  if (!shuffle) return order;
  std::mt19937_64 rng(static_cast<uint64_t>(seed) * 1000003ULL + static_cast<uint64_t>(epoch));
  for (int64_t i = n - 1; i > 0; --i) std::swap(order[static_cast<size_t>(i)], order[rng() % static_cast<uint64_t>(i + 1)]);
  return order;
}

std::string config_diff(const json& saved, const json& now) {
  std::string out;
  for (auto it = now.begin(); it != now.end(); ++it) {
    if (!saved.contains(it.key())) out += cat("\n  ", it.key(), ": (absent) -> ", it->dump());
    else if (saved[it.key()] != *it) out += cat("\n  ", it.key(), ": ", saved[it.key()].dump(), " -> ", it->dump());
  }
  for (auto it = saved.begin(); it != saved.end(); ++it)
    if (!now.contains(it.key())) out += cat("\n  ", it.key(), ": ", it->dump(), " -> (absent)");
  return out;
}

}  // namespace

void validate_config(const TrainConfig& c) {
  SK_CHECK(!c.model_dir.empty(), "train: --model is required");
  SK_CHECK(!c.output_dir.empty(), "train: --output-dir is required");
  SK_CHECK(!c.examples.empty() || !c.data_path.empty(), "train: --data is required");
  SK_CHECK(c.epochs > 0, "train: --num-train-epochs must be > 0");
  SK_CHECK(c.batch_size > 0, "train: --per-device-train-batch-size must be > 0");
  SK_CHECK(c.grad_accum > 0, "train: --gradient-accumulation-steps must be > 0");
  SK_CHECK(c.lr >= 0 && c.weight_decay >= 0, "train: --learning-rate and --weight-decay must be >= 0");
  SK_CHECK(c.warmup_ratio >= 0 && c.warmup_ratio <= 1, "train: --warmup-ratio must be in [0, 1]");
  SK_CHECK(c.scheduler == "cosine" || c.scheduler == "constant", "train: --lr-scheduler-type must be cosine or constant, got '",
           c.scheduler, "'");
  SK_CHECK(c.head_theta >= 0 && c.head_theta <= 1, "train: --head-theta must be in [0, 1]");
  SK_CHECK(c.last_k_epoch >= 0, "train: --last-k-epoch must be >= 0");
  SK_CHECK(c.max_seq_len > 1, "train: --max-seq-len must be > 1");
  SK_CHECK(c.dtype == "auto" || c.dtype == "float32" || c.dtype == "bfloat16",
           "train: --dtype must be auto, float32 or bfloat16, got '", c.dtype, "'");
  SK_CHECK(c.zero_stage >= 0 && c.zero_stage <= 3, "train: --zero-stage must be 0, 1, 2 or 3, got ", c.zero_stage);
  SK_CHECK(c.dist_bucket_mb > 0, "train: --dist-bucket-mb must be > 0");
  SK_CHECK(c.loss_chunk_tokens >= 0, "train: --loss-chunk-tokens must be >= 0");
  SK_CHECK(c.lora_r >= 0, "train: --lora-r must be >= 0 (0 = full fine-tuning)");
  SK_CHECK(c.lora_dropout >= 0 && c.lora_dropout < 1, "train: --lora-dropout must be in [0, 1)");
  SK_CHECK(c.lora_r == 0 || c.zero_stage <= 2,
           "train: LoRA runs at --zero-stage 0, 1 or 2 (the adapters are small and the frozen base is not sharded)");
  SK_CHECK(c.lora_r == 0 || !c.lora_target_modules.empty(), "train: --lora-target-modules is empty");
  SK_CHECK(c.save_dtype == "auto" || c.save_dtype == "float32" || c.save_dtype == "bfloat16",
           "train: --save-dtype must be auto, float32 or bfloat16, got '", c.save_dtype, "'");
  SK_CHECK(c.plot_steps >= -1, "train: --plot-steps must be -1 (with the progress lines), 0 (at the end) or > 0");
  if (c.head_detach) SK_CHECK(c.head, "--detach-safety-head needs --safety-head");
  if (c.qmm_no_mask) SK_CHECK(c.qmm, "--key-sentence-prediction-mask-ablation needs --key-sentence-prediction");
}

namespace {

// The fingerprint of the data this run trains on (data_fingerprint.h): examples after truncation,
// every epoch's order, and for text records the tokenizer and chat template that tokenized them.
DataFingerprint fingerprint_of(const TrainConfig& cfg, const Dataset& ds) {
  DataFingerprint f;
  const auto n = static_cast<int64_t>(ds.examples.size());
  f.examples = n;
  f.content = hash_examples(ds.examples);
  Fnv64 order;
  for (int64_t e = 0; e < cfg.epochs; ++e) order.ids(epoch_order(n, cfg.seed, e, cfg.shuffle));
  f.epoch_order = order.hex();
  if (ds.format == "records") {
    Fnv64 tok, tmpl;
    const std::string t = read_file(path_join(cfg.model_dir, "tokenizer.json"));
    tok.bytes(t.data(), t.size());
    const std::string source = text::ChatFormat::from_path(cfg.model_dir).source();
    tmpl.bytes(source.data(), source.size());
    f.tokenizer = tok.hex();
    f.chat_template = tmpl.hex();
  }
  return f;
}

// --resume on data that changed since the checkpoint: an error that lists what changed, unless
// allowed (then a warning). A checkpoint without a fingerprint (older versions) resumes with a warning.
void check_resume_data(const TrainerState& saved, const DataFingerprint& now, const std::string& ck, bool allow,
                       bool quiet) {
  const DataFingerprint before = DataFingerprint::from_json(saved.data_fingerprint);
  if (before.empty()) {
    if (!quiet)
      std::cerr << "warning: " << ck << " has no data fingerprint (written by an older safekey); resuming "
                << "without checking that the training data is the same\n";
    return;
  }
  const auto changes = fingerprint_changes(before, now);
  if (changes.empty()) return;
  std::string list;
  for (const auto& c : changes) list += "\n  " + c;
  SK_CHECK(allow, "train --resume: the training data changed since ", ck, " was written:", list,
           "\n(pass --resume-allow-data-change to resume on the new data anyway)");
  if (!quiet) std::cerr << "warning: resuming on changed training data (--resume-allow-data-change):" << list << "\n";
}

// The device of this rank: a plain "cuda" binds cuda:LOCAL_RANK under a launcher (torchrun's rule).
std::string rank_device(const std::string& device, const dist::Env& env) {
  if (env.launched() && device == "cuda") return cat("cuda:", env.local_rank);
  return device;
}

// Per-rank partial sums of one optimizer step, reduced across ranks in one collective.
struct StepSums {
  enum : size_t { kLoss, kSft, kK, kHead, kHeadC, kHeadCtx, kSftTok, kSftOk, kKTok, kKOk, kTokens, kQmmSkip,
                  kHeadSkip, kNonFinite, kCount };
  std::vector<double> v = std::vector<double>(kCount, 0.0);
  // The host-side counts of one micro-batch (no device sync).
  void add_counts(const StepResult& r) {
    v[kSftTok] += static_cast<double>(r.sft_tokens);
    v[kKTok] += static_cast<double>(r.k_tokens);
    v[kTokens] += static_cast<double>(r.tokens);
    v[kQmmSkip] += static_cast<double>(r.qmm_skipped_rows);
    v[kHeadSkip] += static_cast<double>(r.head_skipped_rows);
  }
  // The step's device-side terms (StepResult::terms, weighted and summed), read once. Returns false
  // when a loss term is not finite.
  bool add_terms(const torch::Tensor& device_terms) {
    if (!device_terms.defined()) return true;
    auto t = device_terms.cpu();
    const double* x = t.data_ptr<double>();
    const size_t slots[] = {kLoss, kSft, kK, kHead, kHeadC, kHeadCtx, kSftOk, kKOk};
    bool finite = true;
    for (size_t i = 0; i < 8; ++i) {
      v[slots[i]] += x[i];
      if (i < 6) finite = finite && std::isfinite(x[i]);
    }
    return finite;
  }
  void fill(StepMetrics& m) const {
    m.loss = v[kLoss];
    m.sft_loss = v[kSft];
    m.k_loss = v[kK];
    m.head_loss = v[kHead];
    m.L_head_C = v[kHeadC];
    m.L_head_ctx = v[kHeadCtx];
    m.token_acc = v[kSftTok] > 0 ? v[kSftOk] / v[kSftTok] : 0.0;
    m.k_acc = v[kKTok] > 0 ? v[kKOk] / v[kKTok] : 0.0;
    m.tokens = static_cast<int64_t>(v[kTokens]);
    m.qmm_skipped_rows = static_cast<int64_t>(v[kQmmSkip]);
    m.head_skipped_rows = static_cast<int64_t>(v[kHeadSkip]);
  }
};


// run_training as a recipe: run() reads top to bottom, one named stage per line, and the members
// carry what one stage hands the next. They are declared in the order the stages create them, so
// they are destroyed in reverse (the ZeRO-3 layer hooks before the optimizer, the model before the
// memory meter, the process group last). Every rank runs the same stages, so every collective
// (the head's broadcast, the per-step all-reduces, the checkpoint's) is met by all ranks in order.
struct Recipe {
  explicit Recipe(const TrainConfig& config) : cfg(config) {}
  Recipe(const Recipe&) = delete;
  Recipe& operator=(const Recipe&) = delete;

  TrainResult run();

  void setup_rank();
  void load_model();
  void load_data();
  void plan_steps();
  void make_optimizer();
  void start_or_resume();
  void resume();
  void write_run_files();
  void print_start();
  void set_step_options();
  void train_epochs();
  void optimizer_step(const std::vector<int64_t>& order, int64_t epoch, int64_t& micro);
  std::vector<const data::TokenizedExample*> batch_rows(const std::vector<int64_t>& order, int64_t micro_batch) const;
  torch::Tensor forward_backward(const std::vector<int64_t>& order, int64_t micro, int64_t window,
                                 const torch::Tensor& weights, StepSums& sums, StepMetrics& m);
  std::string reduce_step_sums(const torch::Tensor& terms, StepSums& sums, StepMetrics& m, int64_t epoch);
  void update_weights(StepMetrics& m, int64_t epoch, const std::string& last_good);
  void record_step(StepMetrics& m, int64_t epoch, Clock::time_point t0);
  void checkpoint(int64_t epoch, int64_t micro);
  void write_plot();
  void finish();
  const model::ModelConfig& mc() const { return model->config(); }

  const TrainConfig& cfg;
  // setup_rank
  dist::Env env;
  std::string device_name;
  torch::Device device{torch::kCPU};
  bool cuda = false;
  std::string dtype_name;
  torch::ScalarType dtype = torch::kFloat32;
  std::shared_ptr<dist::ProcessGroup> group;
  int W = 1, R = 0;
  bool main_rank = true;
  bool quiet = false;  // progress and files come from rank 0
  std::unique_ptr<tensor::CpuMemoryMeter> meter;
  // load_model
  bool zero3 = false;
  model::DecoderModel model{nullptr};
  std::unique_ptr<lora::LoraConfig> lora_cfg;
  int64_t pad_id = 0;
  // load_data
  Dataset ds;
  int64_t truncated = 0, k_cut = 0;
  int64_t N = 0;
  DataFingerprint fingerprint;
  // plan_steps
  int64_t micro_per_epoch = 0, step_micro = 0, steps_per_epoch = 0, total_steps = 0, warmup_steps = 0;
  // make_optimizer
  std::unique_ptr<SafetyHead> head;
  std::vector<ParamGroup> groups;
  std::vector<dist::OptimParam> oparams;
  std::optional<dist::ShardedAdamW> opt;
  std::unique_ptr<Zero3Layers> zero3_layers;  // the layers gather their parameters around each use
  // start_or_resume, write_run_files
  std::string metrics_path;
  json run_config;
  TrainerState st;
  TrainResult res;
  int64_t load_peak = 0;  // the model and the optimizer's slices, loaded
  std::vector<double> state_bytes;
  // train_epochs
  StepOptions so;
  Clock::time_point t_start;
  double elapsed_before = 0;
  int64_t start_step = 0;
  bool stop = false;
  int64_t saved_at = -1;
  int64_t plot_every = 0;
};

// The stages of a run, in order; every rank runs all of them.
TrainResult Recipe::run() {
  setup_rank();
  load_model();
  load_data();
  plan_steps();
  make_optimizer();
  start_or_resume();
  write_run_files();
  print_start();
  set_step_options();
  train_epochs();
  finish();
  return std::move(res);
}

// This rank: the launcher's environment, its device and dtype, the process group, the output folder,
// the memory meter and the seed.
void Recipe::setup_rank() {
  env = dist::read_env();
  device_name = rank_device(cfg.device, env);
  device = torch::Device(device_name);
  cuda = device.is_cuda();
  dtype_name = cfg.dtype == "auto" ? (cuda ? "bfloat16" : "float32") : cfg.dtype;
  SK_CHECK(dtype_name == "float32" || cuda, "train: --dtype bfloat16 needs a CUDA device (fp32 on CPU)");
  dtype = dtype_name == "bfloat16" ? torch::kBFloat16 : torch::kFloat32;
  group = dist::ProcessGroup::create(env, {cfg.dist_backend, device_name, cfg.dist_timeout_s});
  W = group->size();
  R = group->rank();
  main_rank = R == 0;
  quiet = cfg.quiet || !main_rank;
  make_dirs(cfg.output_dir);
  // SAFEKEY_MEMORY_METER=1: count every CPU byte libtorch allocates in this thread from here on and
  // write each rank's peak to memory.json at the end (bench_plan compares it with --plan).
  const char* meter_env = std::getenv("SAFEKEY_MEMORY_METER");
  if (meter_env && std::string(meter_env) == "1") meter = std::make_unique<tensor::CpuMemoryMeter>();
  torch::manual_seed(static_cast<uint64_t>(cfg.seed));
}

// The model in training mode, with LoRA adapters when --lora-r > 0, and the padding id.
void Recipe::load_model() {
  zero3 = cfg.zero_stage == 3;
  // In the training dtype on the device, tensor by tensor; at ZeRO-3 the layers only as this rank's
  // slices (zero3.h), so no rank ever holds the whole model.
  model = model::load_model(cfg.model_dir, dtype, device, /*defer_layers=*/zero3);
  model->train();
  model->set_gradient_checkpointing(cfg.gradient_checkpointing);
  // LoRA: the base frozen, adapters attached (drawn from the seed: the same on every rank).
  if (cfg.lora_r > 0) {
    lora_cfg = std::make_unique<lora::LoraConfig>();
    lora_cfg->r = cfg.lora_r;
    lora_cfg->alpha = cfg.lora_alpha;
    lora_cfg->dropout = cfg.lora_dropout;
    lora_cfg->target_modules = cfg.lora_target_modules;
    lora_cfg->use_rslora = cfg.use_rslora;
    lora_cfg->base_model_name_or_path = cfg.model_dir;
    // The chunked loss reads the LM head's weight directly, so an adapter there would not train.
    SK_CHECK(!lora::targets(*lora_cfg, "lm_head"), "train: LoRA on lm_head is not supported (use all-linear, which "
             "leaves the output layer out as PEFT does, or name the projections)");
    const auto adapted = model::add_lora(model, [&](const std::string& p) { return lora::targets(*lora_cfg, p); },
                                         {cfg.lora_r, lora_cfg->scale(), cfg.lora_dropout},
                                         static_cast<uint64_t>(cfg.seed));
    int64_t trainable = 0;
    for (auto& [n, p] : model::lora_parameters(model)) trainable += p.numel();
    if (!quiet)
      std::cerr << "train: LoRA r=" << cfg.lora_r << " alpha=" << cfg.lora_alpha << " on " << adapted.size()
                << " modules, " << trainable << " trainable parameters (the base is frozen)\n";
  }
  pad_id = mc().eos_token_ids.empty() ? 0 : mc().eos_token_ids[0];
}

// Data: validated, then truncated by the documented policy, and fingerprinted. Every rank reads all
// of it and takes its micro-batches of each step (forward_backward).
void Recipe::load_data() {
  if (!cfg.examples.empty()) {
    ds.examples = cfg.examples;
    ds.format = "in-process";
    for (const auto& ex : ds.examples) validate_example(ex, mc().vocab_size);
  } else if (is_pretokenized_file(cfg.data_path)) {
    ds = load_pretokenized(cfg.data_path, mc().vocab_size);
  } else {
    ds = load_record_examples(cfg.data_path, cfg.model_dir, cfg.benign_sources, cfg.skip_invalid,
                              main_rank ? path_join(cfg.output_dir, "skipped_records.json") : "", cfg.max_seq_len,
                              cfg.reference_compat);
    for (const auto& ex : ds.examples) validate_example(ex, mc().vocab_size);
  }
  for (auto& ex : ds.examples) {
    auto t = truncate_example(ex, cfg.max_seq_len, cfg.reference_compat);
    truncated += t.changed;
    k_cut += t.k_cut;
  }
  N = static_cast<int64_t>(ds.examples.size());
  fingerprint = fingerprint_of(cfg, ds);
}

// The step schedule: micro-batches per epoch, optimizer steps, warm-up steps.
void Recipe::plan_steps() {
  // drop_last, as the reference's DataLoader: micro-batches of batch_size rows over the whole data.
  micro_per_epoch = N / cfg.batch_size;
  SK_CHECK(micro_per_epoch > 0, "train: ", N, " examples are fewer than one batch of ", cfg.batch_size);
  // One optimizer step takes W·grad_accum micro-batches (the last step of an epoch may take fewer).
  step_micro = cfg.grad_accum * W;
  steps_per_epoch = (micro_per_epoch + step_micro - 1) / step_micro;
  total_steps = cfg.epochs * steps_per_epoch;
  warmup_steps = static_cast<int64_t>(cfg.warmup_ratio * static_cast<double>(total_steps));
}

// The safety head (one initialisation, broadcast from rank 0), the sharded AdamW over the model and
// the head, and at ZeRO-3 the layer hooks that gather each layer's slices around its use.
void Recipe::make_optimizer() {
  if (cfg.head) {
    head = std::make_unique<SafetyHead>(mc().hidden_size);
    (*head)->to(device);
    (*head)->train();
    torch::NoGradGuard ng;
    for (auto& p : (*head)->parameters()) group->broadcast(p, 0);  // one initialisation on every rank
  }
  groups = make_param_groups(model, head.get(), cfg.weight_decay, cfg.reference_compat);
  oparams = optim_params(groups);
  if (zero3) set_deferred_shapes(oparams, mc());
  opt.emplace(group, oparams, tensor::AdamWHyper{cfg.beta1, cfg.beta2, cfg.eps},
              dist::ShardingOptions{static_cast<int>(cfg.zero_stage),
                                    static_cast<int64_t>(cfg.dist_bucket_mb * 1024 * 1024),
                                    zero3 ? layer_units(oparams) : std::vector<int>{}});
  if (zero3) {
    if (!cfg.resume && cfg.resume_from.empty()) load_layer_slices(*opt, cfg.model_dir);  // else from the checkpoint
    zero3_layers = std::make_unique<Zero3Layers>(model, *opt, cfg.zero3_prefetch);
  }
}

// The trainer state and result before the first step: from the checkpoint with --resume or
// --resume-from, else a fresh run (an output folder without checkpoints, an empty metrics.jsonl).
void Recipe::start_or_resume() {
  metrics_path = path_join(cfg.output_dir, "metrics.jsonl");
  run_config = cfg.to_json();
  run_config["world_size"] = W;
  st.total_steps = total_steps;
  st.warmup_steps = warmup_steps;
  st.config = run_config;
  st.data_fingerprint = fingerprint.to_json();
  res.output_dir = cfg.output_dir;
  res.examples = N;
  res.rank = R;
  res.world_size = W;
  if (cfg.resume || !cfg.resume_from.empty()) {
    resume();
  } else {
    SK_CHECK(list_checkpoints(cfg.output_dir).empty(), "train: ", cfg.output_dir,
             " already holds checkpoints; pass --resume to continue that run or choose another --output-dir");
    if (main_rank) write_file_atomic(metrics_path, "");
  }
}

// Resume: the checkpoint's config and data must match this run's; then its RNG state, weights,
// optimizer state, position and (rank 0) metrics up to its step.
void Recipe::resume() {
  std::string ck = cfg.resume_from;
  if (ck.empty()) {
    auto all = list_checkpoints(cfg.output_dir);
    SK_CHECK(!all.empty(), "train --resume: no complete checkpoint in ", cfg.output_dir);
    ck = all.back();
  }
  TrainerState saved = read_trainer_state(ck);
  if (!saved.config.contains("world_size")) saved.config["world_size"] = 1;  // written by one process
  if (!saved.config.contains("zero_stage")) saved.config["zero_stage"] = 0;
  json now_config = run_config;
  if (cfg.resume_allow_data_change) saved.config.erase("data_path"), now_config.erase("data_path");
  std::string diff = config_diff(saved.config, now_config);
  SK_CHECK(diff.empty(), "train --resume: ", ck, " was written with a different config; these keys differ "
           "(saved -> now):", diff,
           saved.config["world_size"] != run_config["world_size"]
               ? "\n  (resume with the world size the checkpoint was written with; see docs/distributed.md)"
               : "");
  check_resume_data(saved, fingerprint, ck, cfg.resume_allow_data_change, quiet);
  set_torch_rng_state(saved.torch_rng_state);  // rank 0's; each rank's own follows from its rng file
  load_checkpoint_weights(ck, model, head.get(), *opt, lora_cfg != nullptr);
  st.global_step = saved.global_step;
  st.epoch = saved.epoch;
  st.micro_in_epoch = saved.micro_in_epoch;
  st.elapsed_s = saved.elapsed_s;
  if (main_rank) {
    truncate_metrics(metrics_path, st.global_step);
    res.history = read_metrics(metrics_path);
  }
  res.last_checkpoint = ck;
  if (!quiet) std::cerr << "resuming from " << ck << " (step " << st.global_step << ", epoch " << st.epoch + 1 << ")\n";
}

// run_config.json, flags.json and distributed.json (rank 0), after gathering every rank's optimizer
// state size (a collective).
void Recipe::write_run_files() {
  load_peak = meter ? meter->peak() : 0;
  // Optimizer state per rank (the ZeRO partition), gathered for the record.
  state_bytes = std::vector<double>(static_cast<size_t>(W), 0.0);
  state_bytes[static_cast<size_t>(R)] = static_cast<double>(opt->state_bytes());
  state_bytes = group->all_reduce_sum(state_bytes);
  if (main_rank) {
    write_file_atomic(path_join(cfg.output_dir, "run_config.json"), run_config.dump(1));
    if (!cfg.extra.is_null()) write_file_atomic(path_join(cfg.output_dir, "flags.json"), cfg.extra.dump(1));
    write_file_atomic(path_join(cfg.output_dir, "distributed.json"),
                      json{{"world_size", W}, {"backend", group->backend()}, {"zero_stage", cfg.zero_stage},
                           {"device", device_name}, {"launcher", env.launched() ? env.source : "none"},
                           {"optimizer_state_bytes_per_rank", state_bytes}}
                          .dump(1));
  }
}

// The start banner: the data, the schedule, the dtype and device, and the ranks when launched.
void Recipe::print_start() {
  if (quiet) return;
  std::cerr << "train: " << N << " examples (" << ds.format << ")";
  if (ds.skipped) std::cerr << ", " << ds.skipped << " invalid records skipped (skipped_records.json)";
  if (truncated) std::cerr << ", " << truncated << " truncated to " << cfg.max_seq_len << " tokens (" << k_cut << " lost part of K)";
  std::cerr << "; " << micro_per_epoch << " micro-batches of " << cfg.batch_size << " per epoch, "
            << total_steps << " optimizer steps, warm-up " << warmup_steps << ", " << dtype_name << " on "
            << device.str() << " (" << runtime::describe() << ")\n";
  if (env.launched())
    std::cerr << "train: " << W << " ranks (" << group->backend() << "), " << cfg.batch_size << " rows x "
              << cfg.grad_accum << " accumulation x " << W << " ranks = " << cfg.batch_size * step_micro
              << " rows per step; ZeRO stage " << cfg.zero_stage << ", optimizer state "
              << cat(static_cast<int64_t>(state_bytes[0]) / 1024) << " KiB on rank 0\n";
}

// The step's objectives and loss settings that hold for the whole run (train_epochs switches qmm
// and head per epoch, optimizer_step sets the loss scale).
void Recipe::set_step_options() {
  so.qmm_pass = cfg.qmm_no_mask ? QmmPass::NoMask : cfg.qmm_pass;
  so.key_weight = cfg.key_weight;
  so.head_weight = cfg.head_weight;
  so.head_theta = cfg.head_theta;
  so.head_detach = cfg.head_detach;
  so.loss_chunk_tokens = cfg.loss_chunk_tokens;
  so.host_values = false;
  so.uniform_passes = zero3;
}

// The epochs from the start (or resume) position: optimizer steps until the epoch ends or
// --max-steps is reached, and a checkpoint at each epoch end not already saved.
void Recipe::train_epochs() {
  t_start = Clock::now();
  elapsed_before = st.elapsed_s;
  start_step = st.global_step;
  // loss_curves.svg, rewritten atomically while training (plot_steps) and at the end.
  plot_every = cfg.plot_steps < 0 ? std::max<int64_t>(1, cfg.logging_steps) : cfg.plot_steps;
  for (int64_t epoch = st.epoch; epoch < cfg.epochs && !stop; ++epoch) {
    const auto order = epoch_order(N, cfg.seed, epoch, cfg.shuffle);
    const bool on = epoch >= cfg.epochs - cfg.last_k_epoch;
    so.qmm = cfg.qmm && on;
    so.head = cfg.head && on;
    int64_t micro = epoch == st.epoch ? st.micro_in_epoch : 0;
    while (micro < micro_per_epoch) {
      optimizer_step(order, epoch, micro);
      if (stop) break;
    }
    if (!stop && saved_at != st.global_step) checkpoint(epoch, micro_per_epoch);
  }
}

// One optimizer step over the next window of micro-batches from `micro` (advanced past it), then
// its metrics and, when due (--save-steps, --max-steps), a checkpoint.
void Recipe::optimizer_step(const std::vector<int64_t>& order, int64_t epoch, int64_t& micro) {
  const auto t0 = Clock::now();
  // The step's micro-batches micro .. micro+window-1 are dealt round-robin: rank R takes R, R+W, ...
  // Every loss is scaled by 1/window and the gradients are summed over ranks, so the step equals
  // one process accumulating all `window` micro-batches.
  const int64_t window = std::min(step_micro, micro_per_epoch - micro);
  so.loss_scale = 1.0 / static_cast<double>(window);
  StepMetrics m;
  StepSums sums;
  // Loss terms stay on the device and are read once per step (StepOptions::host_values).
  const double w = 1.0 / static_cast<double>(window);
  const auto weights = torch::tensor({w, w, w, w, w, w, 1.0, 1.0}, torch::kFloat64).to(device);
  const torch::Tensor terms = forward_backward(order, micro, window, weights, sums, m);
  const std::string last_good = reduce_step_sums(terms, sums, m, epoch);
  update_weights(m, epoch, last_good);
  st.global_step += 1;
  micro += window;
  record_step(m, epoch, t0);
  if (cfg.max_steps > 0 && st.global_step >= cfg.max_steps) stop = true;
  if ((cfg.save_steps > 0 && st.global_step % cfg.save_steps == 0) || stop) checkpoint(epoch, micro);
}

// The batch_size examples of micro-batch `micro_batch` of the epoch's order.
std::vector<const data::TokenizedExample*> Recipe::batch_rows(const std::vector<int64_t>& order,
                                                              int64_t micro_batch) const {
  std::vector<const data::TokenizedExample*> rows;
  for (int64_t k = 0; k < cfg.batch_size; ++k)
    rows.push_back(&ds.examples[static_cast<size_t>(order[static_cast<size_t>(micro_batch * cfg.batch_size + k)])]);
  return rows;
}

// Forward and backward over this rank's micro-batches of the window, accumulating the gradients
// after every round; returns this rank's loss terms (weighted, summed, still on the device).
torch::Tensor Recipe::forward_backward(const std::vector<int64_t>& order, int64_t micro, int64_t window,
                                       const torch::Tensor& weights, StepSums& sums, StepMetrics& m) {
  torch::Tensor terms;
  for (int64_t round = 0; round * W < window; ++round) {
    const int64_t j = round * W + R;
    if (j < window) {
      Batch b = collate(batch_rows(order, micro + j), pad_id);
      auto r = safekey_step(model, head.get(), b, so);
      terms = terms.defined() ? terms + r.terms * weights : r.terms * weights;
      sums.add_counts(r);
      for (auto& src : b.sources) m.record_ids.push_back(src);
    } else if (zero3) {
      // ZeRO-3: a rank without a micro-batch in this round still runs the same passes (their
      // layers gather collectively), on the step's first micro-batch with a zero loss scale.
      StepOptions idle = so;
      idle.loss_scale = 0.0;
      safekey_step(model, head.get(), collate(batch_rows(order, micro), pad_id), idle);
    }
    opt->accumulate_gradients();  // a collective at ZeRO-2: every rank takes part in every round
  }
  return terms;
}

// Sums the step's partial sums over ranks (one all-reduce on every rank) into m; fails when a loss
// term was not finite on any rank. Returns the last good checkpoint, for the error messages.
std::string Recipe::reduce_step_sums(const torch::Tensor& terms, StepSums& sums, StepMetrics& m, int64_t epoch) {
  std::string bad;  // this rank's terms and records when one of its loss terms is not finite
  if (!sums.add_terms(terms)) {
    bad = cat("total ", sums.v[StepSums::kLoss], ", sft ", sums.v[StepSums::kSft], ", qmm ", sums.v[StepSums::kK],
              ", head ", sums.v[StepSums::kHead], "; records:");
    for (auto& x : m.record_ids) bad += " " + x;
  }
  sums.v[StepSums::kNonFinite] = bad.empty() ? 0.0 : 1.0;
  sums.v = group->all_reduce_sum(sums.v);
  const std::string last_good = res.last_checkpoint.empty() ? "(none yet)" : res.last_checkpoint;
  if (sums.v[StepSums::kNonFinite] > 0)
    fail("train: non-finite loss at step ", st.global_step + 1, " (epoch ", epoch + 1, ")",
         W > 1 ? cat(" on rank ", R) : std::string(), ": ",
         bad.empty() ? std::string("on another rank (see its message)") : bad,
         "; the last good checkpoint is ", last_good);
  sums.fill(m);
  return last_good;
}

// Reduces and clips the gradients (a non-finite norm is an error), then the AdamW step at this
// step's learning rate.
void Recipe::update_weights(StepMetrics& m, int64_t epoch, const std::string& last_good) {
  opt->reduce_gradients();
  m.grad_norm = opt->clip_grad_norm(cfg.max_grad_norm);
  SK_CHECK(std::isfinite(m.grad_norm), "train: non-finite gradient norm at step ", st.global_step + 1,
           " (epoch ", epoch + 1, "); records", W > 1 ? cat(" on rank ", R) : std::string(), ": ",
           [&] { std::string s; for (auto& x : m.record_ids) s += x + " "; return s; }(),
           "; the last good checkpoint is ", last_good);
  m.lr = cfg.lr * lr_lambda(st.global_step, warmup_steps, total_steps, cfg.scheduler == "constant");
  opt->step(m.lr);
  opt->zero_grad();
  m.comm_s = group->take_comm_seconds();
}

// The step's position and timings into m; rank 0 appends it to metrics.jsonl and the history and
// rewrites the plot when due; the progress line and the on_step callback.
void Recipe::record_step(StepMetrics& m, int64_t epoch, Clock::time_point t0) {
  m.step = st.global_step;
  m.total_steps = total_steps;
  m.epoch = epoch;
  m.epochs = cfg.epochs;
  m.objectives_on = so.qmm || so.head;
  m.step_s = std::chrono::duration<double>(Clock::now() - t0).count();
  m.tokens_per_s = m.step_s > 0 ? static_cast<double>(m.tokens) / m.step_s : 0.0;
  const double run_s = std::chrono::duration<double>(Clock::now() - t_start).count();
  m.elapsed_s = elapsed_before + run_s;
  m.eta_s = run_s / static_cast<double>(st.global_step - start_step) * static_cast<double>(total_steps - st.global_step);
  if (main_rank) {
    append_metrics_line(metrics_path, m);
    res.history.push_back(m);
    if (plot_every > 0 && st.global_step % plot_every == 0) write_plot();
  }
  if (!quiet && (st.global_step % std::max<int64_t>(1, cfg.logging_steps) == 0 || st.global_step == total_steps))
    std::cerr << m.progress_line() << std::endl;
  if (cfg.on_step) cfg.on_step(m);
}

// A checkpoint of the position after micro-batch `micro` of `epoch` (collective: every rank saves
// its part); rank 0 then drops the oldest past --save-total-limit.
void Recipe::checkpoint(int64_t epoch, int64_t micro) {
  TrainerState s = st;
  if (micro >= micro_per_epoch) {
    epoch += 1;
    micro = 0;
  }
  s.epoch = epoch;
  s.micro_in_epoch = micro;
  s.epoch_order = epoch < cfg.epochs ? epoch_order(N, cfg.seed, epoch, cfg.shuffle) : std::vector<int64_t>{};
  s.torch_rng_state = get_torch_rng_state();
  s.elapsed_s = elapsed_before + std::chrono::duration<double>(Clock::now() - t_start).count();
  res.last_checkpoint = save_checkpoint(cfg.output_dir, model, head.get(), *opt, s, cfg.model_dir,
                                        cfg.save_dtype == "auto" ? "" : cfg.save_dtype, lora_cfg.get());
  if (main_rank) rotate_checkpoints(cfg.output_dir, cfg.save_total_limit);
  saved_at = st.global_step;
  if (!quiet) std::cerr << "saved " << res.last_checkpoint << "\n";
}

// loss_curves.svg from the history so far, rewritten atomically.
void Recipe::write_plot() {
  write_file_atomic(path_join(cfg.output_dir, "loss_curves.svg"),
                    loss_curves_svg(res.history, "SafeKey training: " + cfg.output_dir));
}

// The end: the result's folders, the final plot and, with the memory meter, every rank's peaks in
// memory.json (a collective).
void Recipe::finish() {
  res.steps = st.global_step;
  if (!res.last_checkpoint.empty()) (lora_cfg ? res.adapter_dir : res.model_dir) = path_join(res.last_checkpoint, lora_cfg ? "adapter" : "model");
  if (main_rank) write_plot();
  if (meter) {
    std::vector<double> peak(static_cast<size_t>(2 * W), 0.0);
    peak[static_cast<size_t>(R)] = static_cast<double>(meter->peak());
    peak[static_cast<size_t>(W + R)] = static_cast<double>(load_peak);
    peak = group->all_reduce_sum(peak);
    if (main_rank)
      write_file_atomic(path_join(cfg.output_dir, "memory.json"),
                        json{{"cpu_peak_bytes_per_rank", std::vector<double>(peak.begin(), peak.begin() + W)},
                             {"cpu_peak_after_load_bytes_per_rank", std::vector<double>(peak.begin() + W, peak.end())}}
                            .dump(1));
  }
}

}  // namespace

TrainResult run_training(const TrainConfig& cfg) {
  validate_config(cfg);
  Recipe recipe(cfg);
  return recipe.run();
}

}  // namespace safekey::train
