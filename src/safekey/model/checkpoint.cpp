// HF checkpoint folders <-> DecoderModel: load_model, save_model, init_weights.
#include <ATen/CPUGeneratorImpl.h>

#include <cstring>
#include <map>
#include <set>

#include "safekey/io/safetensors.h"
#include "safekey/model/decoder.h"
#include "safekey/model/tensor_io.h"
#include "safekey/util/error.h"
#include "safekey/util/file.h"

namespace safekey::model {

namespace {

std::string shape_str(torch::IntArrayRef s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
  return out + "]";
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

void init_weights(DecoderModel& m, uint64_t seed) {
  // HF _init_weights: Linear/Embedding weights ~ N(0, initializer_range), biases 0, norms 1.
  // Drawn in float32 on the CPU in parameter-name order, so the result depends only on the seed.
  auto gen = at::detail::createCPUGenerator(seed);
  const double std_dev = m->config().initializer_range;
  torch::NoGradGuard no_grad;
  for (auto& [name, p] : m->hf_named_parameters()) {
    if (ends_with(name, "norm.weight")) {
      p.fill_(1.0);
    } else if (ends_with(name, ".bias")) {
      p.zero_();
    } else {
      torch::Tensor t = torch::empty(p.sizes(), torch::kFloat);
      t.normal_(0.0, std_dev, gen);
      p.copy_(t);
    }
  }
}

DecoderModel load_model(const std::string& dir, torch::ScalarType dtype, torch::Device device, bool defer_layers) {
  SK_CHECK(path_exists(dir), dir, ": no such model folder");
  SK_CHECK(is_directory(dir), dir, ": not a folder (expected an HF model folder with config.json)");
  const std::string config_path = path_join(dir, "config.json");
  SK_CHECK(path_exists(config_path), config_path, ": missing (not an HF model folder?)");
  DecoderModel m(ModelConfig::from_file(config_path), ModelInit{dtype, device, defer_layers});
  m->eval();
  load_weights(m, dir);
  return m;
}

namespace {

// A CPU tensor of `shape` over `bytes` in the file's dtype: over the mapping itself when the bytes
// are aligned for the element type (no copy; the mapping must outlive it), else a copy.
torch::Tensor over_bytes(const uint8_t* bytes, torch::IntArrayRef shape, io::DType dtype, const std::string& where) {
  const auto opts = torch::TensorOptions().dtype(to_torch_dtype(dtype, where));
  if (reinterpret_cast<uintptr_t>(bytes) % io::dtype_size(dtype) == 0)
    return torch::from_blob(const_cast<uint8_t*>(bytes), shape, opts);
  torch::Tensor t = torch::empty(shape, opts);
  std::memcpy(t.data_ptr(), bytes, static_cast<size_t>(t.nbytes()));
  return t;
}

}  // namespace

void read_tensor_range(const io::Checkpoint& ckpt, const std::string& name, int64_t begin, torch::Tensor dst) {
  io::TensorView v = ckpt.get(name);
  const std::string where = ckpt.file_of(name) + ": tensor '" + name + "'";
  const int64_t n = dst.numel();
  const size_t elem = io::dtype_size(v.dtype());
  const int64_t total = static_cast<int64_t>(v.nbytes / elem);
  SK_CHECK(begin >= 0 && begin + n <= total, where, ": elements [", begin, ", ", begin + n, ") out of range (", total, ")");
  if (n == 0) return;
  torch::NoGradGuard no_grad;
  dst.view({-1}).copy_(over_bytes(v.data + static_cast<size_t>(begin) * elem, {n}, v.dtype(), where));
}

void load_weights(DecoderModel& m, const std::string& dir) {
  const std::string config_path = path_join(dir, "config.json");
  const ModelConfig& cfg = m->config();
  io::Checkpoint ckpt = io::Checkpoint::open(dir);
  std::map<std::string, std::vector<int64_t>> shapes;
  for (auto& ps : cfg.parameter_shapes()) shapes[ps.name] = ps.shape;
  std::set<std::string> used;
  {
    torch::NoGradGuard no_grad;
    for (auto& [name, p] : m->hf_named_parameters()) {
      SK_CHECK(ckpt.contains(name), ckpt.source(), ": missing tensor '", name, "' (required by ",
               config_path, ": ", cfg.architecture, ")");
      io::TensorView v = ckpt.get(name);
      const std::string& file = ckpt.file_of(name);
      // A placeholder (deferred layer parameter) has no elements; its shape is the config's.
      const bool placeholder = p.numel() == 0 && shapes.count(name) && !shapes[name].empty() &&
                               torch::IntArrayRef(shapes[name]) != p.sizes();
      const torch::IntArrayRef want = placeholder ? torch::IntArrayRef(shapes[name]) : p.sizes();
      SK_CHECK(torch::IntArrayRef(v.shape()) == want, file, ": tensor '", name, "' has shape ",
               shape_str(v.shape()), " but ", config_path, " implies ", shape_str(want));
      SK_CHECK(v.dtype() == io::DType::F32 || v.dtype() == io::DType::BF16 ||
                   v.dtype() == io::DType::F16 || v.dtype() == io::DType::F64,
               file, ": tensor '", name, "' has dtype ", io::dtype_name(v.dtype()),
               " (expected a floating-point dtype)");
      if (!placeholder) p.copy_(over_bytes(v.data, v.shape(), v.dtype(), file + ": tensor '" + name + "'"));
      used.insert(name);
    }
  }
  for (const auto& name : ckpt.names()) {
    if (used.count(name)) continue;
    if (cfg.tie_word_embeddings && name == "lm_head.weight") continue;  // HF ignores it when tied
    if (ends_with(name, "rotary_emb.inv_freq")) continue;               // old non-persistent buffer
    fail(ckpt.file_of(name), ": unexpected tensor '", name, "' (not a parameter of ",
         cfg.architecture, " as configured by ", config_path, ")");
  }
}

void save_model(DecoderModel& m, const std::string& dir, int64_t max_shard_bytes, const std::string& dtype,
                const std::function<void(const std::string&)>& before_fetch) {
  auto params = m->hf_named_parameters();
  SK_CHECK(!params.empty(), dir, ": model has no parameters");
  torch::ScalarType st = dtype.empty() ? params[0].second.scalar_type()
                                       : torch_dtype_from_name(canonical_dtype_name(dtype, "--dtype"));
  std::map<std::string, std::vector<int64_t>> shapes;  // from the config: a ZeRO-3 layer may be released now
  for (auto& ps : m->config().parameter_shapes()) shapes[ps.name] = ps.shape;
  make_dirs(dir);
  // Streamed: each shard's tensors are copied to the host (in the saved dtype) only while that shard
  // is written, so a save holds at most one shard on the host, never the whole model.
  std::vector<io::LazyTensor> tensors;
  tensors.reserve(params.size());
  for (auto& [name, p] : params) {
    torch::Tensor param = p;
    const auto shape = shapes.count(name) ? shapes[name] : p.sizes().vec();
    tensors.push_back({name, to_io_dtype(st), shape, [param, st, name = name, &before_fetch, shape] {
                         if (before_fetch) before_fetch(name);
                         SK_CHECK(param.sizes() == torch::IntArrayRef(shape), "save: parameter ", name,
                                  " is not materialised (shape ", shape_str(param.sizes()), ")");
                         auto t = std::make_shared<torch::Tensor>(param.detach().to(torch::kCPU, st).contiguous());
                         return std::shared_ptr<const void>(t, t->data_ptr());
                       }});
  }
  io::write_checkpoint(dir, tensors, max_shard_bytes);
  ModelConfig cfg = m->config();
  cfg.torch_dtype = dtype_hf_name(st);
  write_file_atomic(path_join(dir, "config.json"), cfg.to_json().dump(2) + "\n");
}

}  // namespace safekey::model
