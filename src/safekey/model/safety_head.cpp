#include "safekey/model/safety_head.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "safekey/io/safetensors.h"
#include "safekey/util/error.h"

namespace safekey::model {

SafetyHeadImpl::SafetyHeadImpl(int64_t hidden_size) {
  C_head = register_module("C_head", torch::nn::Linear(hidden_size, 1));
  ctx_head = register_module("ctx_head", torch::nn::Linear(hidden_size, 1));
}

HeadScores score_safety_head(SafetyHead& head, const torch::Tensor& h_u, const torch::Tensor& h_xu) {
  torch::NoGradGuard ng;
  const auto& w = head->C_head->weight;
  SK_CHECK(h_u.dim() == 1 && h_xu.dim() == 1 && h_u.size(0) == w.size(1) && h_xu.size(0) == w.size(1),
           "safety head: pooled hidden states must be [", w.size(1), "], got ", h_u.sizes(), " and ", h_xu.sizes());
  HeadScores s;
  s.logit_u = head->C_head->forward(h_u.to(w.device(), w.scalar_type()).unsqueeze(0)).item<double>();
  s.logit_xu = head->ctx_head->forward(h_xu.to(w.device(), w.scalar_type()).unsqueeze(0)).item<double>();
  s.p_u = 1.0 / (1.0 + std::exp(-s.logit_u));
  s.p_xu = 1.0 / (1.0 + std::exp(-s.logit_xu));
  return s;
}

void load_safety_head(SafetyHead& head, const std::string& path) {
  io::SafetensorsFile f(path);
  torch::NoGradGuard ng;
  for (auto& kv : head->named_parameters()) {
    SK_CHECK(f.contains(kv.key()), path, ": no tensor '", kv.key(), "' (a safety head has C_head.weight, ",
             "C_head.bias, ctx_head.weight, ctx_head.bias)");
    auto v = f.get(kv.key());
    SK_CHECK(v.dtype() == io::DType::F32, path, ": tensor '", kv.key(), "' must be F32, got ",
             io::dtype_name(v.dtype()));
    std::vector<int64_t> want = kv.value().sizes().vec();
    SK_CHECK(v.shape() == want, path, ": tensor '", kv.key(), "' has shape ", c10::IntArrayRef(v.shape()),
             ", the model needs ", kv.value().sizes());
    auto t = torch::empty(want, torch::kFloat32);
    std::memcpy(t.data_ptr<float>(), v.data, v.nbytes);
    kv.value().copy_(t);
  }
}

int64_t safety_head_hidden_size(const std::string& path) {
  io::SafetensorsFile f(path);
  SK_CHECK(f.contains("C_head.weight"), path, ": no tensor 'C_head.weight' (not a safety head file)");
  auto v = f.get("C_head.weight");
  SK_CHECK(v.shape().size() == 2 && v.shape()[0] == 1, path, ": 'C_head.weight' must be [1, hidden], got ",
           c10::IntArrayRef(v.shape()));
  return v.shape()[1];
}

void save_safety_head(SafetyHead& head, const std::string& path) {
  std::vector<torch::Tensor> keep;
  std::vector<io::WriteTensor> tensors;
  for (auto& kv : head->named_parameters()) {
    auto t = kv.value().detach().to(torch::kCPU, torch::kFloat32).contiguous();
    keep.push_back(t);
    io::WriteTensor w;
    w.name = kv.key();
    w.dtype = io::DType::F32;
    w.shape = t.sizes().vec();
    w.data = t.data_ptr();
    tensors.push_back(w);
  }
  io::write_safetensors(path, tensors);
}

}  // namespace safekey::model
