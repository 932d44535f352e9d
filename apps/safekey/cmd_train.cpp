// `safekey train`: SafeKey fine-tuning (SFT + Dual-Path Safety Head + Query-Mask Modeling) of an HF
// model folder. Thin: flags -> train::TrainConfig -> train::run_training (src/safekey/train/trainer.h).
#include <iostream>

#include "cli.h"
#include <torch/version.h>

#include <cstdlib>

#include "safekey/lora/peft.h"
#include "safekey/model/config.h"
#include "safekey/train/memory_plan.h"
#include "safekey/train/trainer.h"
#include "safekey/util/file.h"
#include "safekey/util/error.h"

namespace safekey {
namespace {

// --lora-target-modules: comma-separated names (empty entries ignored).
std::vector<std::string> lora_targets(cli::Args& args) {
  std::vector<std::string> out;
  for (auto& t : args.list("lora-target-modules"))
    if (!t.empty()) out.push_back(t);
  return out;
}

// --plan: the memory plan of the run the other flags describe (train/memory_plan.h).
int run_plan(cli::Args& args) {
  train::PlanInput in;
  const std::string model = args.required("model");
  in.model = model::ModelConfig::from_file(path_join(model, "config.json"));
  const char* ws = std::getenv("WORLD_SIZE");
  in.world_size = args.given("world-size") ? static_cast<int>(args.i64("world-size")) : ws && *ws ? std::atoi(ws) : 1;
  in.zero_stage = static_cast<int>(args.i64("zero-stage"));
  in.cuda = args.str("device").rfind("cuda", 0) == 0;
  const std::string dtype = args.str("dtype");
  in.dtype = dtype == "auto" ? (in.cuda ? "bfloat16" : "float32") : dtype;
  in.batch_size = args.i64("per-device-train-batch-size");
  in.grad_accum = args.i64("gradient-accumulation-steps");
  in.seq_len = args.i64("max-seq-len");
  in.qmm_tokens = args.on("key-sentence-prediction") ? 512 : 0;
  in.safety_head = args.on("safety-head");
  in.gradient_checkpointing = args.on("gradient-checkpointing");
  const std::string attention = args.str("plan-attention");
  SK_CHECK(attention == "auto" || attention == "fused" || attention == "math",
           "--plan-attention must be auto, fused or math, got '", attention, "'");
  in.fused_attention = attention == "auto" ? TORCH_VERSION_MAJOR >= 2 : attention == "fused";
  in.loss_chunk_tokens = args.i64("loss-chunk-tokens");
  in.zero3_prefetch = args.on("zero3-prefetch");
  lora::LoraConfig lc;
  lc.r = args.i64("lora-r");
  lc.target_modules = lora_targets(args);
  in.lora_r = lc.r;
  in.lora_targets = [lc](const std::string& p) { return lora::targets(lc, p); };
  in.bucket_bytes = static_cast<int64_t>(args.f64("dist-bucket-mb") * 1024 * 1024);
  in.device_memory_gb = args.f64("device-memory-gb");
  const auto p = train::plan_memory(in);
  std::cout << "memory plan: " << in.model.summary() << "\n"
            << p.parameters << " parameters (with the safety head: " << (in.safety_head ? "yes" : "no") << "), "
            << in.dtype
            << (in.lora_r > 0 ? cat(" frozen base, LoRA r=", in.lora_r, " (", p.trainable, " trainable, fp32)")
                : in.dtype == "bfloat16" ? " with fp32 master weights" : "")
            << ", " << in.world_size
            << " rank(s), ZeRO stage " << in.zero_stage
            << ", micro-batch " << in.batch_size << " x " << in.seq_len << " tokens, "
            << (in.fused_attention ? "fused" : "math") << " attention, " << (in.cuda ? "CUDA" : "CPU") << "\n\n"
            << p.text() << "\nverdict: " << (p.fits ? "fits" : "does not fit") << " in " << in.device_memory_gb
            << " GiB per rank (peak " << static_cast<int64_t>(p.total_bytes / 1048576.0) << " MiB + reserve "
            << static_cast<int64_t>(p.reserve_bytes / 1048576.0) << " MiB)\n";
  return 0;
}

int run_train(cli::Args& args) {
  if (args.given("config")) args.merge_config_file(args.str("config"));
  if (args.on("plan")) return run_plan(args);
  train::TrainConfig c;
  c.model_dir = args.required("model");
  c.data_path = args.required("data");
  c.output_dir = args.required("output-dir");
  c.epochs = args.i64("num-train-epochs");
  c.batch_size = args.i64("per-device-train-batch-size");
  c.grad_accum = args.i64("gradient-accumulation-steps");
  c.lr = args.f64("learning-rate");
  c.weight_decay = args.f64("weight-decay");
  c.beta1 = args.f64("adam-beta1");
  c.beta2 = args.f64("adam-beta2");
  c.eps = args.f64("adam-epsilon");
  c.warmup_ratio = args.f64("warmup-ratio");
  c.scheduler = args.str("lr-scheduler-type");
  c.max_grad_norm = args.f64("max-grad-norm");
  c.max_seq_len = args.i64("max-seq-len");
  c.max_steps = args.i64("max-steps");
  c.qmm = args.on("key-sentence-prediction");
  c.head = args.on("safety-head");
  c.key_weight = args.f64("key-sentence-weight");
  c.head_weight = args.f64("head-weight");
  c.head_theta = args.f64("head-theta");
  c.last_k_epoch = args.i64("last-k-epoch");
  c.head_detach = args.on("detach-safety-head");
  c.qmm_no_mask = args.on("key-sentence-prediction-mask-ablation");
  const std::string pass = args.str("qmm-pass");
  SK_CHECK(pass == "truncated" || pass == "full", "--qmm-pass: expected truncated or full, got '", pass, "'");
  c.qmm_pass = pass == "full" ? train::QmmPass::FullMasked : train::QmmPass::Truncated;
  c.gradient_checkpointing = args.on("gradient-checkpointing");
  c.loss_chunk_tokens = args.i64("loss-chunk-tokens");
  c.zero3_prefetch = args.on("zero3-prefetch");
  c.lora_r = args.i64("lora-r");
  c.lora_alpha = args.f64("lora-alpha");
  c.lora_dropout = args.f64("lora-dropout");
  c.lora_target_modules = lora_targets(args);
  c.use_rslora = args.on("use-rslora");
  c.reference_compat = args.on("reference-compat");
  c.dtype = args.str("dtype");
  c.device = args.str("device");
  c.seed = args.i64("seed");
  c.shuffle = args.on("shuffle");
  c.zero_stage = args.i64("zero-stage");
  c.dist_backend = args.str("dist-backend");
  c.dist_timeout_s = args.f64("dist-timeout");
  c.dist_bucket_mb = args.f64("dist-bucket-mb");
  c.save_steps = args.i64("save-steps");
  c.save_dtype = args.str("save-dtype");
  c.save_total_limit = args.i64("save-total-limit");
  c.resume = args.on("resume");
  c.resume_from = args.str("resume-from-checkpoint");
  c.logging_steps = args.i64("logging-steps");
  c.skip_invalid = args.on("skip-invalid");
  c.benign_sources = args.list("benign-sources");
  if (c.head_detach) SK_CHECK(c.head, "--detach-safety-head needs --safety-head");
  if (c.qmm_no_mask) SK_CHECK(c.qmm, "--key-sentence-prediction-mask-ablation needs --key-sentence-prediction");
  c.extra = args.resolved();
  auto r = train::run_training(c);
  if (r.rank != 0) return 0;  // one result line per job
  std::cout << json{{"output_dir", r.output_dir}, {"checkpoint", r.last_checkpoint}, {"model", r.model_dir},
                    {"steps", r.steps}, {"examples", r.examples}}
                   .dump()
            << "\n";
  return 0;
}

cli::Registrar reg({"train", "SafeKey fine-tuning: SFT + Dual-Path Safety Head + Query-Mask Modeling",
                    "safekey train --model DIR --data FILE --output-dir DIR [--config FILE] [flags]\n"
                    "  plain SFT:  (no objective flags)\n"
                    "  SafeKey:    --key-sentence-prediction --safety-head  (both in the last --last-k-epoch epochs)\n"
                    "  resume:     the same command plus --resume (refused if the config differs)\n"
                    "  plan:       --plan --world-size W --zero-stage Z --device-memory-gb G (memory per rank)\n"
                    "  ranks:      safekey launch --nproc-per-node N -- safekey train ... [--zero-stage 0|1|2]\n"
                    "              (or torchrun --no-python / Slurm srun; docs/distributed.md)\n"
                    "The run folder gets run_config.json, flags.json, metrics.jsonl, loss_curves.svg and\n"
                    "checkpoint-N/{model/, safety_head.safetensors, optimizer.safetensors, trainer_state.json}.\n"
                    "See docs/training.md.",
                    run_train});

}  // namespace
}  // namespace safekey
