// The toy LRM checkpoint: a byte-level BPE tokenizer trained on the world corpus with the
// R1-Distill added tokens, an R1-Distill-style chat template, and a tiny Qwen2 model from random
// init — a real HF folder (config.json, model.safetensors, tokenizer.json, tokenizer_config.json).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "safekey/util/json.h"

namespace safekey::demo {

// The R1-Distill chat template without the tool branches (same markers, same generation prompt
// "<｜Assistant｜><think>\n", same think-stripping clause that training's keep_thinking removes).
extern const char* const kToyChatTemplate;

struct ToyModelSpec {
  int64_t vocab_size = 1024;  // BPE target (bytes + merges + added tokens)
  int64_t hidden_size = 128;
  int64_t intermediate_size = 384;
  int64_t num_hidden_layers = 4;
  int64_t num_attention_heads = 4;
  int64_t num_key_value_heads = 2;
  int64_t max_position_embeddings = 512;
  json to_json() const;
};

// Trains the tokenizer on `corpus` and writes DIR/tokenizer.json and DIR/tokenizer_config.json.
void write_toy_tokenizer(const std::vector<std::string>& corpus, int64_t vocab_size, const std::string& dir);
// Writes a randomly initialised Qwen2 model (seed) with the tokenizer files of `tokenizer_dir`.
void write_toy_model(const ToyModelSpec& spec, const std::string& tokenizer_dir, uint64_t seed,
                     const std::string& dir);

}  // namespace safekey::demo
