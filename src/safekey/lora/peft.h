// LoRA adapters in Hugging Face PEFT's on-disk format, so that adapters trained here load in PEFT
// (PeftModel.from_pretrained) and adapters trained with PEFT load here. See docs/lora.md.
//
// A PEFT LoRA adapter folder holds two files:
//   adapter_config.json        the LoraConfig (r, lora_alpha, target_modules, ...), sorted keys;
//   adapter_model.safetensors  per adapted Linear at HF path P: "base_model.model.P.lora_A.weight"
//                              A [r, in] and "base_model.model.P.lora_B.weight" B [out, r].
// The adapted layer computes y = W x + scale * B (A x), scale = lora_alpha / r (or / sqrt(r) with
// rsLoRA). Only what can be applied exactly is accepted: every PEFT option that changes that
// formula or adds tensors (DoRA, per-layer ranks, biases, extra trained modules, ...) is refused
// on load with an error that names the file and field, instead of being silently ignored.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "safekey/util/json.h"

namespace safekey::lora {

struct LoraConfig {
  int64_t r = 8;                            // PEFT default
  double alpha = 8;                         // PEFT default lora_alpha
  double dropout = 0.0;                     // lora_dropout
  std::vector<std::string> target_modules;  // names like "q_proj"; or the single entry "all-linear"
  std::string target_regex;  // when PEFT's target_modules is a string (a regex, full match)
  bool use_rslora = false;
  std::string base_model_name_or_path;

  double scale() const;  // alpha / r, or alpha / sqrt(r) with rslora
  // adapter_config.json as PEFT 0.13 writes it (every field of its LoraConfig, sorted keys).
  json to_peft_json() const;
  // Parses PEFT's adapter_config.json. Options this implementation cannot apply exactly are an
  // error naming `file` and the field; unknown keys are ignored (PEFT adds keys across versions).
  static LoraConfig from_peft_json(const json& j, const std::string& file);
};

// Does PEFT put an adapter on the Linear module at this HF path ("model.layers.3.mlp.up_proj")?
// List: the path equals a target or ends with "." + target. Regex: full match on the path.
// "all-linear": every Linear except the output layer "lm_head".
bool targets(const LoraConfig& c, const std::string& module_path);

// One adapted module: A [r, in], B [out, r] (PEFT's lora_A.weight / lora_B.weight).
struct ModuleAdapter {
  torch::Tensor A, B;
};

struct Adapter {
  LoraConfig config;
  // key: HF module path ("model.layers.0.self_attn.q_proj")
  std::map<std::string, ModuleAdapter> modules;
};

// The file names inside an adapter folder.
inline constexpr const char* kConfigFile = "adapter_config.json";
inline constexpr const char* kWeightsFile = "adapter_model.safetensors";

// Reads DIR/adapter_config.json + DIR/adapter_model.safetensors (tensors to CPU in their file
// dtype). Also accepts the in-memory key spelling "<path>.lora_A.default.weight". Errors name the
// file and tensor: a pair missing A or B, a rank that differs from the config's r, a non-2-D
// tensor, any other key (DoRA magnitudes, embedding adapters, biases), a folder with only the
// pickle adapter_model.bin.
Adapter load_adapter(const std::string& dir);

// Writes DIR/adapter_config.json and DIR/adapter_model.safetensors with PEFT's key names, tensors
// cast to `dtype` ("float32", "bfloat16", "float16"; "" = as they are). A new or empty DIR is
// filled in a temp folder renamed into place (all or nothing); in a folder that already holds
// other files the weights are replaced first, then the config, each by an atomic rename.
void save_adapter(const std::string& dir, const Adapter& a, const std::string& dtype = "");

// The safetensors key of a module's A / B ("base_model.model.<path>.lora_A.weight").
std::string peft_key(const std::string& module_path, char which);

}  // namespace safekey::lora
