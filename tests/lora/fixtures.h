// Test fixtures for tests/lora, written independently of the code under test:
//   write_peft_fixture: an adapter folder in PEFT's exact on-disk layout (not via save_adapter);
//   write_tiny_base:    a tiny HF model folder (random float tensors under a 2-layer decoder's HF
//                       names, single file or sharded, plus config and tokenizer files).
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "safekey/io/safetensors.h"
#include "safekey/tensor/safetensors_torch.h"
#include "safekey/util/file.h"
#include "safekey/util/json.h"

namespace safekey::test {

// adapter_config.json as PEFT 0.13's save_pretrained writes it for
// LoraConfig(r=R, lora_alpha=ALPHA, lora_dropout=0.05, target_modules=[...],
// task_type="CAUSAL_LM"): every field of its LoraConfig dataclass, keys sorted
// (json.dumps(indent=2, sort_keys=True)), target_modules serialized from a Python set (so in
// arbitrary order; here deliberately unsorted), inference_mode true after save. R, ALPHA and
// TARGETS are substituted below.
inline const char* kPeft013Config = R"({
  "alpha_pattern": {},
  "auto_mapping": null,
  "base_model_name_or_path": "Qwen/Qwen2.5-0.5B-Instruct",
  "bias": "none",
  "fan_in_fan_out": false,
  "inference_mode": true,
  "init_lora_weights": true,
  "layer_replication": null,
  "layers_pattern": null,
  "layers_to_transform": null,
  "loftq_config": {},
  "lora_alpha": ALPHA,
  "lora_dropout": 0.05,
  "megatron_config": null,
  "megatron_core": "megatron.core",
  "modules_to_save": null,
  "peft_type": "LORA",
  "r": R,
  "rank_pattern": {},
  "revision": null,
  "target_modules": TARGETS,
  "task_type": "CAUSAL_LM",
  "use_dora": false,
  "use_rslora": false
})";

inline std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size()))
    s.replace(p, from.size(), to);
  return s;
}

// The config text for r, alpha and a JSON list/string of targets ("[\"v_proj\", \"q_proj\"]").
inline std::string peft013_config_text(int64_t r, int64_t alpha, const std::string& targets_json) {
  std::string s = replace_all(kPeft013Config, "\"r\": R", "\"r\": " + std::to_string(r));
  s = replace_all(s, "ALPHA", std::to_string(alpha));
  return replace_all(s, "TARGETS", targets_json);
}

struct FixtureModule {
  std::string path;  // HF module path, "model.layers.0.self_attn.q_proj"
  torch::Tensor A;   // [r, in]
  torch::Tensor B;   // [out, r]
};

// Writes DIR/adapter_config.json (`config_text`) and DIR/adapter_model.safetensors with PEFT's key
// names "base_model.model.<path>.lora_A.weight" (or the in-memory ".lora_A.default.weight" when
// `default_variant`), metadata {"format": "pt"} as PEFT's safetensors save_file call writes it.
// `extra` tensors are added under their names as given (for rejection tests).
inline void write_peft_fixture(const std::string& dir, const std::string& config_text,
                               const std::vector<FixtureModule>& modules,
                               bool default_variant = false,
                               const std::map<std::string, torch::Tensor>& extra = {}) {
  make_dirs(dir);
  write_file_atomic(path_join(dir, "adapter_config.json"), config_text);
  std::vector<torch::Tensor> keep;
  std::vector<io::WriteTensor> w;
  auto add = [&](const std::string& name, const torch::Tensor& t) {
    keep.push_back(t.contiguous());
    w.push_back(
        {name, tensor::to_io_dtype(t.scalar_type()), t.sizes().vec(), keep.back().data_ptr()});
  };
  const std::string mid = default_variant ? ".default" : "";
  for (const auto& m : modules) {
    if (m.A.defined()) add("base_model.model." + m.path + ".lora_A" + mid + ".weight", m.A);
    if (m.B.defined()) add("base_model.model." + m.path + ".lora_B" + mid + ".weight", m.B);
  }
  for (const auto& [name, t] : extra) add(name, t);
  io::write_safetensors(path_join(dir, "adapter_model.safetensors"), w, {{"format", "pt"}});
}

// Random LoRA factors for a module with `in` inputs and `out` outputs. B is non-zero (PEFT
// initialises it to zero, but a trained adapter's is not, and a zero B would hide merge errors).
inline FixtureModule random_module(const std::string& path, int64_t r, int64_t in, int64_t out) {
  return {path, torch::randn({r, in}), torch::randn({out, r})};
}

// Tiny decoder dims: hidden 8, 2 heads of 4 (1 KV head), MLP 12, vocab 16, 2 layers.
constexpr int64_t kHidden = 8, kKv = 4, kInter = 12, kVocab = 16, kLayers = 2;

// The non-weight files of the tiny base folder (copied by merge byte for byte).
inline const std::vector<std::string>& tiny_base_other_files() {
  static const std::vector<std::string> f = {"config.json",
                                             "tokenizer.json",
                                             "tokenizer_config.json",
                                             "generation_config.json",
                                             "special_tokens_map.json",
                                             "chat_template.jinja"};
  return f;
}

// Writes DIR as a tiny HF folder in `dtype`; max_shard_bytes > 0 shards it (model-0000i-of-0000n +
// index) through the io writer. Also writes a pickle "training_args.bin" that merge must not copy.
// Returns the tensors written (in `dtype`).
inline std::map<std::string, torch::Tensor> write_tiny_base(const std::string& dir,
                                                            torch::ScalarType dtype,
                                                            int64_t max_shard_bytes = 0) {
  make_dirs(dir);
  std::map<std::string, torch::Tensor> t;
  auto add = [&](const std::string& name, std::vector<int64_t> shape) {
    t[name] = (torch::randn(shape) * 0.5).to(dtype);
  };
  add("model.embed_tokens.weight", {kVocab, kHidden});
  for (int i = 0; i < kLayers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    add(p + "self_attn.q_proj.weight", {kHidden, kHidden});
    add(p + "self_attn.q_proj.bias", {kHidden});
    add(p + "self_attn.k_proj.weight", {kKv, kHidden});
    add(p + "self_attn.v_proj.weight", {kKv, kHidden});
    add(p + "self_attn.o_proj.weight", {kHidden, kHidden});
    add(p + "mlp.gate_proj.weight", {kInter, kHidden});
    add(p + "mlp.up_proj.weight", {kInter, kHidden});
    add(p + "mlp.down_proj.weight", {kHidden, kInter});
    add(p + "input_layernorm.weight", {kHidden});
    add(p + "post_attention_layernorm.weight", {kHidden});
  }
  add("model.norm.weight", {kHidden});
  add("lm_head.weight", {kVocab, kHidden});
  std::vector<io::WriteTensor> w;
  for (const auto& [name, x] : t)
    w.push_back({name, tensor::to_io_dtype(x.scalar_type()), x.sizes().vec(), x.data_ptr()});
  io::write_checkpoint(dir, w, max_shard_bytes > 0 ? max_shard_bytes : (int64_t{1} << 40));

  const char* type = dtype == torch::kBFloat16 ? "bfloat16" : "float32";
  write_file_atomic(
      path_join(dir, "config.json"),
      std::string(
          R"({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 8,
  "intermediate_size": 12, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
  "vocab_size": 16, "tie_word_embeddings": false, "torch_dtype": ")") +
          type + "\"}\n");
  write_file_atomic(path_join(dir, "tokenizer.json"),
                    R"({"version": "1.0", "model": {"type": "BPE"}})");
  write_file_atomic(path_join(dir, "tokenizer_config.json"), R"({"eos_token": "<|end|>"})");
  write_file_atomic(path_join(dir, "generation_config.json"), R"({"eos_token_id": 15})");
  write_file_atomic(path_join(dir, "special_tokens_map.json"), R"({"eos_token": "<|end|>"})");
  write_file_atomic(path_join(dir, "chat_template.jinja"),
                    "{% for m in messages %}{{ m.content }}{% endfor %}");
  write_file_atomic(path_join(dir, "training_args.bin"), std::string("\x80\x04pickle", 8));
  return t;
}

}  // namespace safekey::test
