// safetensors <-> torch tensors (the torch-free reader/writer is io/safetensors.h).
#pragma once
#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "safekey/io/safetensors.h"

namespace safekey::model {

torch::ScalarType to_torch_dtype(io::DType t, const std::string& where);
io::DType to_io_dtype(torch::ScalarType t);
// "float32" / "bfloat16" / "float16" (HF names, see canonical_dtype_name) -> torch dtype.
torch::ScalarType torch_dtype_from_name(const std::string& hf_name);
std::string dtype_hf_name(torch::ScalarType t);

// A CPU tensor holding a copy of the view's bytes (the mapping may close afterwards).
torch::Tensor tensor_from_view(const io::TensorView& v, const std::string& where);

// Reads every tensor of one .safetensors file (copies, CPU), in data order.
std::vector<std::pair<std::string, torch::Tensor>> load_safetensors(const std::string& path);
// Writes tensors (any device/dtype; written as they are) to one file atomically, HF layout.
void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, torch::Tensor>>& tensors);

}  // namespace safekey::model
