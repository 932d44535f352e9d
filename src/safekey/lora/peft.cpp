#include "safekey/lora/peft.h"

#include <algorithm>
#include <cmath>
#include <regex>

#include "safekey/io/safetensors.h"
#include "safekey/lora/staged_dir.h"
#include "safekey/tensor/safetensors_torch.h"
#include "safekey/util/error.h"
#include "safekey/util/file.h"

namespace safekey::lora {
namespace {

// PEFT's wrapper path (PeftModelForCausalLM -> LoraModel -> the HF model) before every key.
constexpr const char* kKeyPrefix = "base_model.model.";
constexpr const char* kAllLinear = "all-linear";

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

bool is_all_linear(const LoraConfig& c) {
  return c.target_regex.empty() && c.target_modules.size() == 1 &&
         c.target_modules[0] == kAllLinear;
}

// A JSON value that counts as "not set": absent, null, false, 0-length string / list / object.
bool unset(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return true;
  if (it->is_boolean()) return !it->get<bool>();
  if (it->is_string() || it->is_array() || it->is_object()) return it->empty();
  return false;
}

// Refuses a set option with the reason; PEFT would apply it, so ignoring it would load a different
// model than the one that was trained.
void refuse_if_set(const json& j, const char* key, const std::string& file, const char* why) {
  if (!unset(j, key)) fail(file, ": field '", key, "' is ", j.at(key).dump(), ": ", why);
}

}  // namespace

double LoraConfig::scale() const {
  return use_rslora ? alpha / std::sqrt(static_cast<double>(r)) : alpha / static_cast<double>(r);
}

json LoraConfig::to_peft_json() const {
  json j = json::object();  // nlohmann's object is a sorted map: keys come out as PEFT sorts them
  json targets_json;
  if (!target_regex.empty()) {
    targets_json = target_regex;
  } else if (is_all_linear(*this)) {
    targets_json = kAllLinear;  // PEFT's own spelling for it is the string, not a list
  } else {
    std::vector<std::string> sorted = target_modules;
    std::sort(sorted.begin(), sorted.end());
    targets_json = sorted;
  }
  // An integral alpha is written as an integer, as PEFT users set it (lora_alpha=16).
  json alpha_json = alpha == std::floor(alpha) && std::fabs(alpha) < 1e15
                        ? json(static_cast<int64_t>(alpha))
                        : json(alpha);
  j["alpha_pattern"] = json::object();
  j["auto_mapping"] = nullptr;
  j["base_model_name_or_path"] =
      base_model_name_or_path.empty() ? json(nullptr) : json(base_model_name_or_path);
  j["bias"] = "none";
  j["fan_in_fan_out"] = false;
  j["inference_mode"] = true;
  j["init_lora_weights"] = true;
  j["layer_replication"] = nullptr;
  j["layers_pattern"] = nullptr;
  j["layers_to_transform"] = nullptr;
  j["loftq_config"] = json::object();
  j["lora_alpha"] = alpha_json;
  j["lora_dropout"] = dropout;
  j["megatron_config"] = nullptr;
  j["megatron_core"] = "megatron.core";
  j["modules_to_save"] = nullptr;
  j["peft_type"] = "LORA";
  j["r"] = r;
  j["rank_pattern"] = json::object();
  j["revision"] = nullptr;
  j["target_modules"] = targets_json;
  j["task_type"] = "CAUSAL_LM";
  j["use_dora"] = false;
  j["use_rslora"] = use_rslora;
  return j;
}

LoraConfig LoraConfig::from_peft_json(const json& j, const std::string& file) {
  SK_CHECK(j.is_object(), file, ": expected a JSON object");
  const std::string peft_type = json_get<std::string>(j, "peft_type", file);
  SK_CHECK(peft_type == "LORA", file, ": field 'peft_type' is \"", peft_type,
           "\": only LORA adapters are supported");
  const std::string task = json_get_or<std::string>(j, "task_type", "CAUSAL_LM", file);
  SK_CHECK(task == "CAUSAL_LM", file, ": field 'task_type' is \"", task,
           "\": only CAUSAL_LM adapters are supported (other tasks wrap the model differently)");
  const std::string bias = json_get_or<std::string>(j, "bias", "none", file);
  SK_CHECK(bias == "none", file, ": field 'bias' is \"", bias,
           "\": trained biases are not supported (only \"none\")");

  // Each refused option changes what the adapted layer computes or which tensors exist.
  refuse_if_set(j, "use_dora", file,
                "DoRA adapters are not supported (the magnitude vector changes the merge)");
  refuse_if_set(j, "fan_in_fan_out", file,
                "fan_in_fan_out (Conv1D-style [in, out] weights) is not supported");
  refuse_if_set(j, "rank_pattern", file, "per-module ranks are not supported");
  refuse_if_set(j, "alpha_pattern", file, "per-module alphas are not supported");
  refuse_if_set(j, "layers_pattern", file, "adapting only some layers is not supported");
  refuse_if_set(j, "modules_to_save", file, "fully trained extra modules are not supported");
  refuse_if_set(j, "layer_replication", file, "layer replication is not supported");
  refuse_if_set(j, "exclude_modules", file, "excluded modules are not supported");
  refuse_if_set(j, "lora_bias", file, "LoRA biases are not supported");
  refuse_if_set(j, "target_parameters", file, "adapters on raw parameters are not supported");
  refuse_if_set(j, "trainable_token_indices", file, "trainable token embeddings are not supported");
  refuse_if_set(j, "use_qalora", file, "QA-LoRA is not supported");
  refuse_if_set(j, "alora_invocation_tokens", file, "activated LoRA is not supported");
  // A layers_to_transform of [] is not "unset" to PEFT (it adapts nothing), so refuse it too.
  if (j.contains("layers_to_transform") && !j["layers_to_transform"].is_null())
    fail(file, ": field 'layers_to_transform' is ", j["layers_to_transform"].dump(),
         ": adapting only some layers is not supported");

  LoraConfig c;
  c.r = json_get_or<int64_t>(j, "r", c.r, file);
  SK_CHECK(c.r > 0, file, ": field 'r' must be positive (got ", c.r, ")");
  c.alpha = json_get_or<double>(j, "lora_alpha", c.alpha, file);
  c.dropout = json_get_or<double>(j, "lora_dropout", c.dropout, file);
  SK_CHECK(c.dropout >= 0 && c.dropout < 1, file, ": field 'lora_dropout' must be in [0, 1) (got ",
           c.dropout, ")");
  c.use_rslora = json_get_or<bool>(j, "use_rslora", false, file);
  c.base_model_name_or_path = json_get_or<std::string>(j, "base_model_name_or_path", "", file);

  auto tm = j.find("target_modules");
  // PEFT fills a missing list from the model type; the saved config always carries the result.
  SK_CHECK(tm != j.end() && !tm->is_null(), file,
           ": field 'target_modules' is missing (name the adapted modules, e.g. [\"q_proj\", "
           "\"v_proj\"])");
  if (tm->is_string()) {
    const std::string s = tm->get<std::string>();
    if (s == kAllLinear) {
      c.target_modules = {kAllLinear};
    } else {
      try {
        std::regex check(s);
      } catch (const std::regex_error& e) {
        fail(file, ": field 'target_modules' is not a valid regex \"", s, "\" (", e.what(), ")");
      }
      c.target_regex = s;
    }
  } else {
    SK_CHECK(tm->is_array() && !tm->empty(), file,
             ": field 'target_modules' must be a non-empty list or a string");
    for (const auto& t : *tm) {
      SK_CHECK(t.is_string() && !t.get<std::string>().empty(), file,
               ": field 'target_modules' holds a non-string or empty entry ", t.dump());
      c.target_modules.push_back(t.get<std::string>());
    }
    std::sort(c.target_modules.begin(), c.target_modules.end());
    c.target_modules.erase(std::unique(c.target_modules.begin(), c.target_modules.end()),
                           c.target_modules.end());
  }
  return c;
}

bool targets(const LoraConfig& c, const std::string& module_path) {
  if (!c.target_regex.empty()) return std::regex_match(module_path, std::regex(c.target_regex));
  if (is_all_linear(c)) return !(module_path == "lm_head" || ends_with(module_path, ".lm_head"));
  for (const auto& t : c.target_modules)
    if (module_path == t || ends_with(module_path, "." + t)) return true;
  return false;
}

std::string peft_key(const std::string& module_path, char which) {
  return cat(kKeyPrefix, module_path, ".lora_", which, ".weight");
}

Adapter load_adapter(const std::string& dir) {
  SK_CHECK(is_directory(dir), dir, ": no such adapter folder");
  const std::string config_path = path_join(dir, kConfigFile);
  SK_CHECK(path_exists(config_path), dir, ": no ", kConfigFile, " (not a PEFT adapter folder)");
  Adapter a;
  a.config = LoraConfig::from_peft_json(read_json_file(config_path), config_path);

  const std::string st = path_join(dir, kWeightsFile);
  if (!path_exists(st)) {
    const std::string bin = path_join(dir, "adapter_model.bin");
    SK_CHECK(!path_exists(bin), bin, ": pickle adapters are not supported; convert it to ",
             kWeightsFile,
             " (in Python: PeftModel.from_pretrained(...).save_pretrained(dir, "
             "safe_serialization=True))");
    fail(st, ": missing (a PEFT adapter folder holds ", kConfigFile, " and ", kWeightsFile, ")");
  }
  io::SafetensorsFile f(st);
  for (const auto& name : f.names()) {
    const std::string where = cat(st, ": tensor '", name, "'");
    for (const char* unsupported :
         {"lora_embedding_A", "lora_embedding_B", "lora_magnitude_vector"})
      SK_CHECK(name.find(unsupported) == std::string::npos, where,
               ": DoRA / embedding adapters are not supported");
    std::string path;
    char which = 0;
    const size_t prefix = std::char_traits<char>::length(kKeyPrefix);
    if (name.rfind(kKeyPrefix, 0) == 0) {
      for (char w : {'A', 'B'})
        for (std::string tail : {cat(".lora_", w, ".weight"), cat(".lora_", w, ".default.weight")})
          if (!which && ends_with(name, tail) && name.size() > prefix + tail.size()) {
            path = name.substr(prefix, name.size() - prefix - tail.size());
            which = w;
          }
    }
    SK_CHECK(which, where, ": unexpected key (a LoRA adapter holds only ", kKeyPrefix,
             "<module>.lora_A.weight and .lora_B.weight)");
    torch::Tensor t = tensor::tensor_from_view(f.get(name), where);
    SK_CHECK(t.dim() == 2, where, ": expected a 2-D matrix, got ", t.dim(), " dimensions");
    torch::Tensor& slot = which == 'A' ? a.modules[path].A : a.modules[path].B;
    SK_CHECK(!slot.defined(), where, ": module '", path, "' has lora_", which,
             " twice (plain and .default)");
    slot = t;
  }
  SK_CHECK(!a.modules.empty(), st, ": holds no LoRA tensors");
  for (const auto& [path, m] : a.modules) {
    SK_CHECK(m.A.defined(), st, ": tensor '", peft_key(path, 'A'), "' is missing (module '", path,
             "' has only lora_B)");
    SK_CHECK(m.B.defined(), st, ": tensor '", peft_key(path, 'B'), "' is missing (module '", path,
             "' has only lora_A)");
    SK_CHECK(m.A.size(0) == a.config.r, st, ": tensor '", peft_key(path, 'A'), "' has rank ",
             m.A.size(0), " but ", config_path, " says r = ", a.config.r);
    SK_CHECK(m.B.size(1) == a.config.r, st, ": tensor '", peft_key(path, 'B'), "' has rank ",
             m.B.size(1), " but ", config_path, " says r = ", a.config.r);
  }
  return a;
}

void save_adapter(const std::string& dir, const Adapter& a, const std::string& dtype) {
  SK_CHECK(!a.modules.empty(), dir, ": an adapter needs at least one module");
  SK_CHECK(dtype.empty() || dtype == "float32" || dtype == "bfloat16" || dtype == "float16", dir,
           ": adapter dtype '", dtype, "' is not one of float32, bfloat16, float16");
  std::vector<torch::Tensor> keep;  // CPU, contiguous, cast: the bytes the writer points into
  std::vector<io::WriteTensor> w;
  for (const auto& [path, m] : a.modules) {
    for (char which : {'A', 'B'}) {
      const torch::Tensor& t = which == 'A' ? m.A : m.B;
      SK_CHECK(t.defined() && t.dim() == 2, dir, ": module '", path, "': lora_", which,
               " must be a 2-D tensor");
      const int64_t rank = which == 'A' ? t.size(0) : t.size(1);
      SK_CHECK(rank == a.config.r, dir, ": module '", path, "': lora_", which, " has rank ", rank,
               " but r = ", a.config.r);
      torch::Tensor c = t.detach().to(torch::kCPU);
      if (!dtype.empty()) c = c.to(tensor::torch_dtype_from_name(dtype));
      keep.push_back(c.contiguous());
      w.push_back({peft_key(path, which), tensor::to_io_dtype(keep.back().scalar_type()),
                   keep.back().sizes().vec(), keep.back().data_ptr()});
    }
  }
  const std::string config_text = a.config.to_peft_json().dump(2) + "\n";
  if (absent_or_empty(dir)) {
    StagedDir staged(dir);
    io::write_safetensors(path_join(staged.path(), kWeightsFile), w);
    write_file_atomic(path_join(staged.path(), kConfigFile), config_text);
    staged.commit();
    return;
  }
  // A folder with other files (a README, a trainer's state) cannot be swapped as a whole without
  // moving those; each file is replaced atomically, the config last, so a reader never sees a
  // torn file. A crash between the two renames leaves new weights beside the old config.
  SK_CHECK(is_directory(dir), dir, ": exists and is not a folder");
  io::write_safetensors(path_join(dir, kWeightsFile), w);
  write_file_atomic(path_join(dir, kConfigFile), config_text);
}

}  // namespace safekey::lora
