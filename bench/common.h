// Helpers shared by the benchmark programs: the folder of the running executable (where `safekey`
// is built), a Qwen2-shaped config of a given size, and integer flags.
#pragma once
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include "safekey/model/config.h"
#include "safekey/util/json.h"

namespace safekey::bench {

inline std::string exe_dir() {
  char buf[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  std::string p(buf, static_cast<size_t>(std::max<ssize_t>(n, 0)));
  return p.substr(0, p.rfind('/'));
}

// A Qwen2-shaped config (untied LM head, intermediate = 2.75 x hidden, qkv biases).
inline model::ModelConfig qwen2_config(int64_t hidden, int64_t layers, int64_t vocab, int64_t heads,
                                       int64_t kv_heads) {
  json j{{"architectures", {"Qwen2ForCausalLM"}}, {"model_type", "qwen2"}, {"vocab_size", vocab},
         {"hidden_size", hidden}, {"intermediate_size", hidden * 11 / 4}, {"num_hidden_layers", layers},
         {"num_attention_heads", heads}, {"num_key_value_heads", kv_heads}, {"max_position_embeddings", 4096},
         {"rms_norm_eps", 1e-6}, {"rope_theta", 1e6}, {"tie_word_embeddings", false}, {"use_sliding_window", false},
         {"bos_token_id", vocab - 2}, {"eos_token_id", vocab - 1}, {"torch_dtype", "float32"}};
  return model::ModelConfig::from_json(j, "bench config");
}

// "--name value" pairs into the named integers; false (after a message) on an unknown flag.
inline bool parse_int_flags(int argc, char** argv, const std::map<std::string, int64_t*>& flags) {
  for (int i = 1; i + 1 < argc; i += 2) {
    auto it = flags.find(argv[i]);
    if (it == flags.end()) {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return false;
    }
    *it->second = std::atoll(argv[i + 1]);
  }
  return true;
}

}  // namespace safekey::bench
