// A tiny random Qwen2 model folder with the real R1-Distill-Qwen tokenizer and chat template, for
// generation and server tests: config.json + model.safetensors (model::save_model), tokenizer.json
// (build/tokref, scripts/install_test_refs.sh) and tokenizer_config.json (../shared, reconstructed
// R1-Distill-Qwen-7B, which carries the chat template) copied into a temp folder.
#pragma once
#include <gtest/gtest.h>

#include <string>

#include "safekey/model/decoder.h"
#include "safekey/util/file.h"
#include "support/support.h"

namespace safekey::test {

inline std::string r1_tokenizer_json() { return path_join(tokref_dir(), "r1_distill_qwen_tokenizer.json"); }
inline std::string r1_tokenizer_config() {
  return path_join(shared_dir(), "data/hf-configs/reconstructed/DeepSeek-R1-Distill-Qwen-7B/tokenizer_config.json");
}
inline bool tiny_model_refs_present() {
  return path_exists(r1_tokenizer_json()) && path_exists(r1_tokenizer_config());
}

// hidden 32, 2 layers, 4 heads / 2 kv heads, vocab 151936 (covers the R1 tokenizer's 151665).
inline std::string make_tiny_model(const std::string& tag, int64_t max_positions = 512, uint64_t seed = 7,
                                   int64_t hidden = 32, int64_t layers = 2) {
  std::string dir = make_temp_dir(tag);
  json cfg = {{"architectures", {"Qwen2ForCausalLM"}},
              {"model_type", "qwen2"},
              {"vocab_size", 151936},
              {"hidden_size", hidden},
              {"intermediate_size", hidden * 2},
              {"num_hidden_layers", layers},
              {"num_attention_heads", 4},
              {"num_key_value_heads", 2},
              {"max_position_embeddings", max_positions},
              {"rms_norm_eps", 1e-6},
              {"rope_theta", 10000.0},
              {"tie_word_embeddings", true},
              {"initializer_range", 0.2},
              {"bos_token_id", 151646},
              {"eos_token_id", 151643},
              {"torch_dtype", "float32"},
              {"use_sliding_window", false}};
  auto mc = model::ModelConfig::from_json(cfg, tag + "/config.json");
  model::DecoderModel m(mc);
  model::init_weights(m, seed);
  model::save_model(m, dir);
  write_file_atomic(path_join(dir, "tokenizer.json"), read_file(r1_tokenizer_json()));
  write_file_atomic(path_join(dir, "tokenizer_config.json"), read_file(r1_tokenizer_config()));
  return dir;
}

}  // namespace safekey::test

#define SAFEKEY_REQUIRE_TINY_MODEL_REFS()                                                   \
  do {                                                                                     \
    if (!::safekey::test::tiny_model_refs_present())                                       \
      GTEST_SKIP() << "tokenizer references missing: run scripts/install_test_refs.sh ("   \
                   << ::safekey::test::r1_tokenizer_json() << ")";                         \
  } while (0)
