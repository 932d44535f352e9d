// safetensors <-> torch tensors (the torch-free reader/writer is io/safetensors.h).
#pragma once
#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "safekey/io/safetensors.h"
#include "safekey/tensor/safetensors_torch.h"

namespace safekey::model {

// The dtype mapping and view copy live in tensor/ (shared with lora/); model:: callers keep
// their spelling.
using tensor::dtype_hf_name;
using tensor::tensor_from_view;
using tensor::to_io_dtype;
using tensor::to_torch_dtype;
using tensor::torch_dtype_from_name;

// Reads every tensor of one .safetensors file (copies, CPU), in data order.
std::vector<std::pair<std::string, torch::Tensor>> load_safetensors(const std::string& path);
// Writes tensors (any device/dtype; written as they are) to one file atomically, HF layout.
void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, torch::Tensor>>& tensors);

}  // namespace safekey::model
