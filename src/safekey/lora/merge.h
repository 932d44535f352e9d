// Folding a LoRA adapter into its base model: the result is a plain HF model folder that every
// command (and transformers) loads without knowing about adapters. See docs/lora.md, "Merging".
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace safekey::lora {

struct MergeReport {
  int64_t merged_modules = 0;      // adapted weights rewritten
  int64_t tensors = 0;             // tensors written in all (merged + copied)
  double scale = 0;                // the adapter's scale (alpha / r, or alpha / sqrt(r))
  std::vector<std::string> files;  // file names written into OUT, sorted
};

// Writes OUT as a plain HF folder: every tensor of BASE's safetensors (single file or shards)
// copied, and for each adapted module W' = W + scale * B @ A computed in float32 and cast back
// to W's dtype. The sharding is BASE's (same file names, index copied as is); one shard is written
// at a time. config.json and every other non-weight file of BASE (tokenizer, generation config,
// chat template, ...) are copied. Errors name the adapter file and module when a module's weight
// is missing from BASE or its shape is not [out, in] of B [out, r] @ A [r, in]. OUT must be a new
// (or empty) folder other than BASE; it appears only complete (temp folder, then rename).
MergeReport merge_adapter(const std::string& base_dir, const std::string& adapter_dir,
                          const std::string& out_dir);

}  // namespace safekey::lora
