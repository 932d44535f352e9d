#include "safekey/model/tensor_io.h"

#include "safekey/util/error.h"

namespace safekey::model {

std::vector<std::pair<std::string, torch::Tensor>> load_safetensors(const std::string& path) {
  io::SafetensorsFile f(path);
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& name : f.names())
    out.emplace_back(name, tensor_from_view(f.get(name), path + ": tensor '" + name + "'"));
  return out;
}

void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  std::vector<torch::Tensor> keep;
  std::vector<io::WriteTensor> w;
  for (const auto& [name, t] : tensors) {
    keep.push_back(t.detach().to(torch::kCPU).contiguous());
    const auto& c = keep.back();
    w.push_back({name, to_io_dtype(c.scalar_type()), c.sizes().vec(), c.data_ptr()});
  }
  io::write_safetensors(path, w);
}

}  // namespace safekey::model
