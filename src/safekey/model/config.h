// Model configuration read from a Hugging Face `config.json` (one table of keys with defaults, see
// config.cpp). Qwen2, Llama and Qwen3 are one decoder family that differs in a few switches.
// No libtorch here: the CLI, data and serving layers read configs without it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "safekey/util/json.h"

namespace safekey::model {

enum class Arch { Qwen2, Llama, Qwen3 };

struct RopeScaling {
  std::string type = "default";  // "default" or "llama3"
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct ModelConfig {
  Arch arch = Arch::Qwen2;
  std::string architecture;  // "Qwen2ForCausalLM", "LlamaForCausalLM", "Qwen3ForCausalLM"
  std::string model_type;    // "qwen2", "llama", "qwen3"
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;  // explicit in config.json, else hidden_size / num_attention_heads
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool attention_bias = false;  // q/k/v biases (Qwen2: true)
  bool mlp_bias = false;
  bool qk_norm = false;         // per-head RMSNorm on q and k (Qwen3)
  bool tie_word_embeddings = false;
  double initializer_range = 0.02;
  std::vector<int64_t> bos_token_ids;
  std::vector<int64_t> eos_token_ids;  // config.json's eos_token_id may be an int or a list
  std::string torch_dtype = "float32";
  json raw;  // the file as read; saving writes it back with only the known keys updated

  // Reads and validates; errors name `where` and the field. Unknown architectures, active sliding
  // windows and unsupported rope types are errors.
  static ModelConfig from_json(const json& j, const std::string& where);
  static ModelConfig from_file(const std::string& path);
  json to_json() const;
  int64_t num_parameters() const;
  // Every parameter by HF name with its shape, in HF's module order (state_dict order). The tied
  // lm_head is not listed (it is model.embed_tokens.weight).
  struct ParamShape {
    std::string name;
    std::vector<int64_t> shape;
  };
  std::vector<ParamShape> parameter_shapes() const;
  // A one-line summary: "Qwen2ForCausalLM: 2 layers, hidden 64, heads 4/2 x 16, ...".
  std::string summary() const;
};

// "float32" | "bfloat16" | "float16" | "fp32" | "bf16" | "fp16" -> canonical HF name; throws otherwise.
std::string canonical_dtype_name(const std::string& s, const std::string& where);

}  // namespace safekey::model
