// `safekey train`: SafeKey fine-tuning (SFT + Dual-Path Safety Head + Query-Mask Modeling) of an HF
// model folder. Thin: option table (train/options.h) -> defaults < --config files < flags < key=value
// overrides -> train::TrainConfig -> train::run_training (src/safekey/train/trainer.h).
#include <torch/version.h>

#include <cstdlib>
#include <iostream>
#include <sstream>

#include "cli.h"
#include "safekey/lora/peft.h"
#include "safekey/model/config.h"
#include "safekey/tensor/runtime.h"
#include "safekey/train/memory_plan.h"
#include "safekey/train/options.h"
#include "safekey/train/trainer.h"
#include "safekey/util/error.h"
#include "safekey/util/file.h"

namespace safekey {
namespace {

// The training options of this command line: defaults (and their environment variables), then each
// --config file in order, then the flags given, then the key=value overrides; a later source wins.
// `flags` gets every flag of the command with its resolved value (flags.json).
train::TrainConfig resolve_options(cli::Args& args, json* flags) {
  const auto& schema = train::train_schema();
  config::Values values(schema);
  std::istringstream files(args.str("config"));  // repeatable: one path per line
  for (std::string path; std::getline(files, path);)
    if (!path.empty()) values.merge_file(path);
  for (const auto& o : schema.options())
    if (!o.key.empty() && !o.flag.empty() && args.given(o.flag)) values.set_text(o, args.str(o.flag), "--" + o.flag);
  for (const auto& arg : args.positional()) values.apply_override(arg);
  train::TrainConfig c;
  train::apply_values(values, c);
  *flags = args.resolved();
  for (const auto& o : schema.options())
    if (!o.key.empty() && !o.flag.empty()) (*flags)[o.flag] = config::to_text(values.get(o.key));
  return c;
}

// --plan: the memory plan of the run the options describe (train/memory_plan.h).
int run_plan(cli::Args& args, const train::TrainConfig& c) {
  train::PlanInput in;
  SK_CHECK(!c.model_dir.empty(), "train: --model is required (see safekey train --help)");
  in.model = model::ModelConfig::from_file(path_join(c.model_dir, "config.json"));
  const char* ws = std::getenv("WORLD_SIZE");
  in.world_size = args.given("world-size") ? static_cast<int>(args.i64("world-size")) : ws && *ws ? std::atoi(ws) : 1;
  in.zero_stage = static_cast<int>(c.zero_stage);
  in.cuda = c.device.rfind("cuda", 0) == 0;
  in.dtype = c.dtype == "auto" ? (in.cuda ? "bfloat16" : "float32") : c.dtype;
  in.batch_size = c.batch_size;
  in.grad_accum = c.grad_accum;
  in.seq_len = c.max_seq_len;
  in.qmm_tokens = c.qmm ? 512 : 0;
  in.safety_head = c.head;
  in.gradient_checkpointing = c.gradient_checkpointing;
  const std::string attention = args.str("plan-attention");
  SK_CHECK(attention == "auto" || attention == "fused" || attention == "math",
           "--plan-attention must be auto, fused or math, got '", attention, "'");
  in.fused_attention = attention == "auto" ? TORCH_VERSION_MAJOR >= 2 : attention == "fused";
  in.loss_chunk_tokens = c.loss_chunk_tokens;
  in.zero3_prefetch = c.zero3_prefetch;
  lora::LoraConfig lc;
  lc.r = c.lora_r;
  lc.target_modules = c.lora_target_modules;
  in.lora_r = lc.r;
  in.lora_targets = [lc](const std::string& p) { return lora::targets(lc, p); };
  in.bucket_bytes = static_cast<int64_t>(c.dist_bucket_mb * 1024 * 1024);
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
  if (args.on("print-options-markdown")) {
    std::cout << train::train_schema().markdown();
    return 0;
  }
  json flags;
  train::TrainConfig c = resolve_options(args, &flags);
  // A config file may name the device; main set the CPU memory policy from the flags alone.
  if (c.device != args.str("device")) runtime::set_cpu_memory(args.str("cpu-memory"), c.device);
  if (args.on("plan")) return run_plan(args, c);
  SK_CHECK(!c.model_dir.empty(), "train: --model is required (see safekey train --help)");
  SK_CHECK(!c.data_path.empty(), "train: --data is required (see safekey train --help)");
  SK_CHECK(!c.output_dir.empty(), "train: --output-dir is required (see safekey train --help)");
  c.extra = flags;
  auto r = train::run_training(c);
  if (r.rank != 0) return 0;  // one result line per job
  std::cout << json{{"output_dir", r.output_dir}, {"checkpoint", r.last_checkpoint}, {"model", r.model_dir},
                    {"steps", r.steps}, {"examples", r.examples}}
                   .dump()
            << "\n";
  return 0;
}

cli::Registrar reg({"train", "SafeKey fine-tuning: SFT + Dual-Path Safety Head + Query-Mask Modeling",
                    "safekey train --model DIR --data FILE --output-dir DIR [--config FILE] [flags] [key=value ...]\n"
                    "  plain SFT:  (no objective flags)\n"
                    "  SafeKey:    --key-sentence-prediction --safety-head  (both in the last --last-k-epoch epochs)\n"
                    "  recipe:     --config recipes/safekey_r1_distill_qwen_7b_16gpu.yaml model_dir=DIR data_path=FILE\n"
                    "              (YAML or JSON; precedence: defaults < --config files < flags < key=value)\n"
                    "  resume:     the same command plus --resume (refused if the config or the data differ)\n"
                    "  plan:       --plan --world-size W --zero-stage Z --device-memory-gb G (memory per rank)\n"
                    "  ranks:      safekey launch --nproc-per-node N -- safekey train ... [--zero-stage 0|1|2]\n"
                    "              (or torchrun --no-python / Slurm srun; docs/distributed.md)\n"
                    "The run folder gets run_config.json, flags.json, metrics.jsonl, loss_curves.svg and\n"
                    "checkpoint-N/{model/, safety_head.safetensors, optimizer.safetensors, trainer_state.json}.\n"
                    "Every option with its config key, type and default: docs/training.md (--print-options-markdown).",
                    run_train});

}  // namespace
}  // namespace safekey
