// `safekey merge --model BASE --adapter DIR --out DIR`: folds a PEFT LoRA adapter into its base
// model (W' = W + scale * B @ A per adapted Linear) and writes a plain HF folder with BASE's
// sharding, config and tokenizer files. See docs/lora.md, "Merging".
#include <iostream>

#include "cli.h"
#include "safekey/lora/merge.h"

namespace safekey {
namespace {

int run_merge(cli::Args& args) {
  const std::string base = args.required("model");
  const std::string adapter = args.required("adapter");
  const std::string out = args.required("out");
  const lora::MergeReport r = lora::merge_adapter(base, adapter, out);
  std::cout << "merged " << r.merged_modules << " LoRA module(s) of " << adapter << " (scale "
            << r.scale << ") into " << base << ": " << r.tensors << " tensors, " << r.files.size()
            << " files -> " << out << "\n";
  return 0;
}

cli::Registrar reg({"merge", "fold a PEFT LoRA adapter into its base model (a plain HF folder)",
                    "safekey merge --model BASE --adapter ADAPTER_DIR --out MERGED_DIR",
                    run_merge});

}  // namespace
}  // namespace safekey
