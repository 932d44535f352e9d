// The bridge between the torch-free safetensors views (io/safetensors.h) and libtorch: dtype
// mapping and copying a view into a CPU tensor. It lives below model/ so that every layer that
// reads checkpoints (model, lora) shares one mapping.
#pragma once
#include <torch/torch.h>

#include <string>

#include "safekey/io/safetensors.h"

namespace safekey::tensor {

torch::ScalarType to_torch_dtype(io::DType t, const std::string& where);
io::DType to_io_dtype(torch::ScalarType t);
// "float32" / "bfloat16" / "float16" (HF names) -> torch dtype.
torch::ScalarType torch_dtype_from_name(const std::string& hf_name);
std::string dtype_hf_name(torch::ScalarType t);

// A CPU tensor holding a copy of the view's bytes (the mapping may close afterwards).
torch::Tensor tensor_from_view(const io::TensorView& v, const std::string& where);

}  // namespace safekey::tensor
