// Test helpers of the trainer tests: a tiny random Qwen2 model saved as a real HF folder and a small
// synthetic pre-tokenized training set with query, U and K spans.
#pragma once
#include <random>
#include <string>

#include "safekey/model/config.h"
#include "safekey/model/decoder.h"
#include "safekey/util/file.h"
#include "safekey/util/json.h"

namespace safekey::test {

inline json tiny_config_json(int64_t vocab = 96, int64_t hidden = 32, int64_t layers = 2) {
  return json{{"architectures", {"Qwen2ForCausalLM"}},
              {"model_type", "qwen2"},
              {"vocab_size", vocab},
              {"hidden_size", hidden},
              {"intermediate_size", 2 * hidden},
              {"num_hidden_layers", layers},
              {"num_attention_heads", 4},
              {"num_key_value_heads", 2},
              {"max_position_embeddings", 1024},
              {"rms_norm_eps", 1e-6},
              {"rope_theta", 10000.0},
              {"tie_word_embeddings", false},
              {"use_sliding_window", false},
              {"sliding_window", 4096},
              {"initializer_range", 0.1},
              {"bos_token_id", vocab - 2},
              {"eos_token_id", vocab - 1},
              {"torch_dtype", "float32"}};
}

// Writes a randomly initialised tiny model into `dir` (HF folder) and returns it.
inline std::string make_tiny_model(const std::string& dir, uint64_t seed = 7, int64_t vocab = 96) {
  make_dirs(dir);
  auto cfg = model::ModelConfig::from_json(tiny_config_json(vocab), dir + "/config.json");
  model::DecoderModel m(cfg);
  model::init_weights(m, seed);
  model::save_model(m, dir);
  return dir;
}

// n examples: query (bos + 4..8 tokens), U (3..6 tokens echoing the query), K (2..4 tokens that
// depend on the label), then an answer; unsafe = parity of the first query token.
inline std::string make_tiny_data(const std::string& path, int n, uint64_t seed = 11, int64_t vocab = 96) {
  std::mt19937_64 rng(seed);
  std::string out;
  for (int i = 0; i < n; ++i) {
    std::vector<int64_t> ids = {vocab - 2};
    int q = 4 + static_cast<int>(rng() % 5);
    for (int t = 0; t < q; ++t) ids.push_back(10 + static_cast<int64_t>(rng() % 40));
    const int unsafe = static_cast<int>(ids[1] % 2);
    ids.push_back(3);  // "assistant" marker ends the query
    const int64_t query_len = static_cast<int64_t>(ids.size());
    int u = 3 + static_cast<int>(rng() % 4);
    for (int t = 0; t < u; ++t) ids.push_back(ids[1 + static_cast<size_t>(t) % static_cast<size_t>(q)] + 1);
    const int64_t k_begin = static_cast<int64_t>(ids.size());
    int k = 2 + static_cast<int>(rng() % 3);
    for (int t = 0; t < k; ++t) ids.push_back(unsafe ? 60 + t : 70 + t);
    const int64_t k_end = static_cast<int64_t>(ids.size());
    int a = 3 + static_cast<int>(rng() % 6);
    for (int t = 0; t < a; ++t) ids.push_back(unsafe ? 80 : 50 + static_cast<int64_t>(rng() % 8));
    ids.push_back(vocab - 1);
    json j{{"input_ids", ids}, {"query_len", query_len}, {"k_begin", k_begin}, {"k_end", k_end}, {"unsafe", unsafe}};
    out += j.dump() + "\n";
  }
  write_file_atomic(path, out);
  return path;
}

}  // namespace safekey::test
