// config.json -> ModelConfig: one table of keys with HF's defaults per architecture, strict types.
#include "safekey/model/config.h"

#include <cmath>

#include "safekey/util/error.h"

namespace safekey::model {

namespace {

struct ArchRow {
  const char* architecture;
  const char* model_type;
  Arch arch;
  bool attention_bias;  // HF: Qwen2 always has q/k/v biases; Llama/Qwen3 read attention_bias
  bool qk_norm;
};
constexpr ArchRow kArchs[] = {
    {"Qwen2ForCausalLM", "qwen2", Arch::Qwen2, true, false},
    {"LlamaForCausalLM", "llama", Arch::Llama, false, false},
    {"Qwen3ForCausalLM", "qwen3", Arch::Qwen3, false, true},
};

// Typed readers: absent or null -> fallback; present with the wrong JSON type -> error.
int64_t get_int(const json& j, const char* key, int64_t fallback, const std::string& where,
                bool required = false) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    SK_CHECK(!required, where, ": missing field '", key, "'");
    return fallback;
  }
  SK_CHECK(it->is_number_integer(), where, ": field '", key, "' must be an integer, got ",
           it->type_name(), " ", it->dump());
  return it->get<int64_t>();
}

double get_num(const json& j, const char* key, double fallback, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  SK_CHECK(it->is_number(), where, ": field '", key, "' must be a number, got ", it->type_name());
  return it->get<double>();
}

bool get_bool(const json& j, const char* key, bool fallback, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  SK_CHECK(it->is_boolean(), where, ": field '", key, "' must be true or false, got ",
           it->type_name());
  return it->get<bool>();
}

// bos/eos ids: an int, a list of ints, or null.
std::vector<int64_t> get_ids(const json& j, const char* key, const std::string& where) {
  std::vector<int64_t> out;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return out;
  if (it->is_number_integer()) return {it->get<int64_t>()};
  SK_CHECK(it->is_array(), where, ": field '", key, "' must be an integer or a list of integers");
  for (const auto& v : *it) {
    SK_CHECK(v.is_number_integer(), where, ": field '", key, "' must hold integers only");
    out.push_back(v.get<int64_t>());
  }
  return out;
}

json ids_json(const std::vector<int64_t>& ids) {
  if (ids.empty()) return nullptr;
  if (ids.size() == 1) return ids[0];
  return ids;
}

}  // namespace

std::string canonical_dtype_name(const std::string& s, const std::string& where) {
  if (s == "float32" || s == "fp32" || s == "f32" || s == "float") return "float32";
  if (s == "bfloat16" || s == "bf16") return "bfloat16";
  if (s == "float16" || s == "fp16" || s == "half") return "float16";
  fail(where, ": unsupported dtype '", s, "' (use float32, bfloat16 or float16)");
}

ModelConfig ModelConfig::from_json(const json& j, const std::string& where) {
  SK_CHECK(j.is_object(), where, ": expected a JSON object");
  ModelConfig c;
  c.raw = j;
  // Architecture: "architectures"[0], else model_type.
  std::string arch_name, model_type;
  if (auto it = j.find("architectures"); it != j.end() && !it->is_null()) {
    SK_CHECK(it->is_array() && !it->empty() && (*it)[0].is_string(), where,
             ": field 'architectures' must be a non-empty list of strings");
    SK_CHECK(it->size() == 1, where, ": field 'architectures' lists ", it->size(),
             " classes; expected one");
    arch_name = (*it)[0].get<std::string>();
  }
  if (auto it = j.find("model_type"); it != j.end() && !it->is_null()) {
    SK_CHECK(it->is_string(), where, ": field 'model_type' must be a string");
    model_type = it->get<std::string>();
  }
  SK_CHECK(!arch_name.empty() || !model_type.empty(), where,
           ": missing field 'architectures' (and 'model_type')");
  const ArchRow* row = nullptr;
  for (const auto& r : kArchs)
    if ((!arch_name.empty() && arch_name == r.architecture) ||
        (arch_name.empty() && model_type == r.model_type))
      row = &r;
  SK_CHECK(row, where, ": unsupported architecture '", arch_name.empty() ? model_type : arch_name,
           "' (supported: Qwen2ForCausalLM, LlamaForCausalLM, Qwen3ForCausalLM)");
  SK_CHECK(model_type.empty() || model_type == row->model_type, where, ": field 'model_type' is '",
           model_type, "' but the architecture is ", row->architecture);
  c.arch = row->arch;
  c.architecture = row->architecture;
  c.model_type = row->model_type;

  c.vocab_size = get_int(j, "vocab_size", 0, where, true);
  c.hidden_size = get_int(j, "hidden_size", 0, where, true);
  c.intermediate_size = get_int(j, "intermediate_size", 0, where, true);
  c.num_hidden_layers = get_int(j, "num_hidden_layers", 0, where, true);
  c.num_attention_heads = get_int(j, "num_attention_heads", 0, where, true);
  c.num_key_value_heads = get_int(j, "num_key_value_heads", c.num_attention_heads, where);
  SK_CHECK(c.vocab_size > 0 && c.hidden_size > 0 && c.intermediate_size > 0 &&
               c.num_hidden_layers > 0 && c.num_attention_heads > 0 && c.num_key_value_heads > 0,
           where, ": vocab_size, hidden_size, intermediate_size, num_hidden_layers, ",
           "num_attention_heads and num_key_value_heads must be positive");
  SK_CHECK(c.num_attention_heads % c.num_key_value_heads == 0, where, ": num_attention_heads (",
           c.num_attention_heads, ") is not a multiple of num_key_value_heads (",
           c.num_key_value_heads, ")");
  int64_t default_head_dim = c.hidden_size / c.num_attention_heads;
  c.head_dim = get_int(j, "head_dim", default_head_dim, where);
  if (!j.contains("head_dim") || j["head_dim"].is_null())
    SK_CHECK(c.hidden_size % c.num_attention_heads == 0, where, ": hidden_size (", c.hidden_size,
             ") is not divisible by num_attention_heads and no head_dim is given");
  SK_CHECK(c.head_dim > 0 && c.head_dim % 2 == 0, where, ": head_dim must be positive and even, got ",
           c.head_dim);
  c.max_position_embeddings = get_int(j, "max_position_embeddings", 2048, where);
  c.rms_norm_eps = get_num(j, "rms_norm_eps", 1e-6, where);
  SK_CHECK(c.rms_norm_eps > 0, where, ": field 'rms_norm_eps' must be positive");
  c.rope_theta = get_num(j, "rope_theta", 10000.0, where);
  SK_CHECK(c.rope_theta > 0, where, ": field 'rope_theta' must be positive");
  c.attention_bias = row->arch == Arch::Qwen2 ? true : get_bool(j, "attention_bias", false, where);
  c.mlp_bias = row->arch == Arch::Llama ? get_bool(j, "mlp_bias", false, where) : false;
  c.qk_norm = row->qk_norm;
  c.tie_word_embeddings = get_bool(j, "tie_word_embeddings", false, where);
  c.initializer_range = get_num(j, "initializer_range", 0.02, where);
  c.bos_token_ids = get_ids(j, "bos_token_id", where);
  c.eos_token_ids = get_ids(j, "eos_token_id", where);
  if (auto it = j.find("torch_dtype"); it != j.end() && !it->is_null()) {
    SK_CHECK(it->is_string(), where, ": field 'torch_dtype' must be a string");
    c.torch_dtype = canonical_dtype_name(it->get<std::string>(), cat(where, ": field 'torch_dtype'"));
  }
  if (auto it = j.find("hidden_act"); it != j.end() && !it->is_null()) {
    SK_CHECK(it->is_string() && it->get<std::string>() == "silu", where,
             ": field 'hidden_act' must be \"silu\", got ", it->dump());
  }
  if (row->arch != Arch::Llama) {
    SK_CHECK(!get_bool(j, "use_sliding_window", false, where), where,
             ": field 'use_sliding_window' is true: sliding-window attention is not supported");
  }
  // rope_scaling: null, {"rope_type"|"type": "default"} or llama3.
  if (auto it = j.find("rope_scaling"); it != j.end() && !it->is_null()) {
    std::string rw = cat(where, ": field 'rope_scaling'");
    SK_CHECK(it->is_object(), rw, " must be an object or null");
    std::string type;
    for (const char* k : {"rope_type", "type"}) {
      if (auto t = it->find(k); t != it->end() && !t->is_null()) {
        SK_CHECK(t->is_string(), rw, ".", k, " must be a string");
        type = t->get<std::string>();
        break;
      }
    }
    SK_CHECK(!type.empty(), rw, " has no 'rope_type'");
    SK_CHECK(type == "default" || type == "llama3", rw, ": unsupported rope type '", type,
             "' (supported: default, llama3)");
    c.rope_scaling.type = type;
    if (type == "llama3") {
      auto need = [&](const char* k) {
        auto f = it->find(k);
        SK_CHECK(f != it->end() && f->is_number(), rw, ".", k, " is missing or not a number");
        return f->get<double>();
      };
      c.rope_scaling.factor = need("factor");
      c.rope_scaling.low_freq_factor = need("low_freq_factor");
      c.rope_scaling.high_freq_factor = need("high_freq_factor");
      c.rope_scaling.original_max_position_embeddings =
          get_int(*it, "original_max_position_embeddings", 0, rw, true);
      SK_CHECK(c.rope_scaling.factor > 0 && c.rope_scaling.low_freq_factor > 0 &&
                   c.rope_scaling.high_freq_factor > c.rope_scaling.low_freq_factor &&
                   c.rope_scaling.original_max_position_embeddings > 0,
               rw, ": llama3 needs factor > 0, 0 < low_freq_factor < high_freq_factor and ",
               "original_max_position_embeddings > 0");
    }
  }
  return c;
}

ModelConfig ModelConfig::from_file(const std::string& path) {
  return from_json(read_json_file(path), path);
}

json ModelConfig::to_json() const {
  json j = raw.is_object() ? raw : json::object();
  j["architectures"] = json::array({architecture});
  j["model_type"] = model_type;
  j["vocab_size"] = vocab_size;
  j["hidden_size"] = hidden_size;
  j["intermediate_size"] = intermediate_size;
  j["num_hidden_layers"] = num_hidden_layers;
  j["num_attention_heads"] = num_attention_heads;
  j["num_key_value_heads"] = num_key_value_heads;
  if (j.contains("head_dim") || arch != Arch::Qwen2 || head_dim * num_attention_heads != hidden_size)
    j["head_dim"] = head_dim;
  j["max_position_embeddings"] = max_position_embeddings;
  j["rms_norm_eps"] = rms_norm_eps;
  j["rope_theta"] = rope_theta;
  if (arch != Arch::Qwen2) j["attention_bias"] = attention_bias;
  if (arch == Arch::Llama) j["mlp_bias"] = mlp_bias;
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["initializer_range"] = initializer_range;
  j["hidden_act"] = "silu";
  if (!j.contains("bos_token_id") || !bos_token_ids.empty()) j["bos_token_id"] = ids_json(bos_token_ids);
  if (!j.contains("eos_token_id") || !eos_token_ids.empty()) j["eos_token_id"] = ids_json(eos_token_ids);
  j["torch_dtype"] = torch_dtype;
  if (rope_scaling.type == "llama3") {
    json rs = j.contains("rope_scaling") && j["rope_scaling"].is_object() ? j["rope_scaling"]
                                                                          : json::object();
    rs["rope_type"] = "llama3";
    rs["factor"] = rope_scaling.factor;
    rs["low_freq_factor"] = rope_scaling.low_freq_factor;
    rs["high_freq_factor"] = rope_scaling.high_freq_factor;
    rs["original_max_position_embeddings"] = rope_scaling.original_max_position_embeddings;
    j["rope_scaling"] = rs;
  } else if (!j.contains("rope_scaling")) {
    j["rope_scaling"] = nullptr;
  }
  if (arch != Arch::Llama && !j.contains("use_sliding_window")) j["use_sliding_window"] = false;
  return j;
}

std::vector<ModelConfig::ParamShape> ModelConfig::parameter_shapes() const {
  const int64_t H = hidden_size, I = intermediate_size, V = vocab_size;
  const int64_t q_out = num_attention_heads * head_dim, kv_out = num_key_value_heads * head_dim;
  std::vector<ParamShape> out;
  out.push_back({"model.embed_tokens.weight", {V, H}});
  for (int64_t i = 0; i < num_hidden_layers; ++i) {
    std::string p = cat("model.layers.", i, ".");
    out.push_back({p + "self_attn.q_proj.weight", {q_out, H}});
    if (attention_bias) out.push_back({p + "self_attn.q_proj.bias", {q_out}});
    out.push_back({p + "self_attn.k_proj.weight", {kv_out, H}});
    if (attention_bias) out.push_back({p + "self_attn.k_proj.bias", {kv_out}});
    out.push_back({p + "self_attn.v_proj.weight", {kv_out, H}});
    if (attention_bias) out.push_back({p + "self_attn.v_proj.bias", {kv_out}});
    out.push_back({p + "self_attn.o_proj.weight", {H, q_out}});
    if (attention_bias && arch != Arch::Qwen2) out.push_back({p + "self_attn.o_proj.bias", {H}});
    if (qk_norm) {
      out.push_back({p + "self_attn.q_norm.weight", {head_dim}});
      out.push_back({p + "self_attn.k_norm.weight", {head_dim}});
    }
    out.push_back({p + "mlp.gate_proj.weight", {I, H}});
    if (mlp_bias) out.push_back({p + "mlp.gate_proj.bias", {I}});
    out.push_back({p + "mlp.up_proj.weight", {I, H}});
    if (mlp_bias) out.push_back({p + "mlp.up_proj.bias", {I}});
    out.push_back({p + "mlp.down_proj.weight", {H, I}});
    if (mlp_bias) out.push_back({p + "mlp.down_proj.bias", {H}});
    out.push_back({p + "input_layernorm.weight", {H}});
    out.push_back({p + "post_attention_layernorm.weight", {H}});
  }
  out.push_back({"model.norm.weight", {H}});
  if (!tie_word_embeddings) out.push_back({"lm_head.weight", {V, H}});
  return out;
}

int64_t ModelConfig::num_parameters() const {
  int64_t n = 0;
  for (const auto& p : parameter_shapes()) {
    int64_t k = 1;
    for (int64_t d : p.shape) k *= d;
    n += k;
  }
  return n;
}

std::string ModelConfig::summary() const {
  std::string rope = cat("rope theta ", rope_theta);
  if (rope_scaling.type == "llama3")
    rope += cat(" llama3(factor ", rope_scaling.factor, ", low ", rope_scaling.low_freq_factor,
                ", high ", rope_scaling.high_freq_factor, ", original ",
                rope_scaling.original_max_position_embeddings, ")");
  return cat(architecture, ": ", num_hidden_layers, " layers, hidden ", hidden_size,
             ", intermediate ", intermediate_size, ", heads ", num_attention_heads, "/",
             num_key_value_heads, " x ", head_dim, ", vocab ", vocab_size, ", ", rope,
             ", rms_norm_eps ", rms_norm_eps, attention_bias ? ", qkv bias" : "",
             qk_norm ? ", q/k norm" : "", tie_word_embeddings ? ", tied lm_head" : "",
             ", max positions ", max_position_embeddings, ", ", torch_dtype);
}

}  // namespace safekey::model
