#include "safekey/tensor/safetensors_torch.h"

#include <cstring>

#include "safekey/util/error.h"

namespace safekey::tensor {

torch::ScalarType to_torch_dtype(io::DType t, const std::string& where) {
  switch (t) {
    case io::DType::BOOL: return torch::kBool;
    case io::DType::U8: return torch::kUInt8;
    case io::DType::I8: return torch::kInt8;
    case io::DType::I16: return torch::kInt16;
    case io::DType::F16: return torch::kHalf;
    case io::DType::BF16: return torch::kBFloat16;
    case io::DType::I32: return torch::kInt32;
    case io::DType::F32: return torch::kFloat;
    case io::DType::F64: return torch::kDouble;
    case io::DType::I64: return torch::kLong;
    default: fail(where, ": dtype ", io::dtype_name(t), " has no libtorch equivalent");
  }
}

io::DType to_io_dtype(torch::ScalarType t) {
  switch (t) {
    case torch::kBool: return io::DType::BOOL;
    case torch::kUInt8: return io::DType::U8;
    case torch::kInt8: return io::DType::I8;
    case torch::kInt16: return io::DType::I16;
    case torch::kHalf: return io::DType::F16;
    case torch::kBFloat16: return io::DType::BF16;
    case torch::kInt32: return io::DType::I32;
    case torch::kFloat: return io::DType::F32;
    case torch::kDouble: return io::DType::F64;
    case torch::kLong: return io::DType::I64;
    default: fail("safetensors: cannot store torch dtype ", c10::toString(t));
  }
}

torch::ScalarType torch_dtype_from_name(const std::string& hf_name) {
  if (hf_name == "float32") return torch::kFloat;
  if (hf_name == "bfloat16") return torch::kBFloat16;
  if (hf_name == "float16") return torch::kHalf;
  fail("unsupported model dtype '", hf_name, "'");
}

std::string dtype_hf_name(torch::ScalarType t) {
  if (t == torch::kFloat) return "float32";
  if (t == torch::kBFloat16) return "bfloat16";
  if (t == torch::kHalf) return "float16";
  fail("unsupported model dtype ", c10::toString(t));
}

torch::Tensor tensor_from_view(const io::TensorView& v, const std::string& where) {
  torch::ScalarType st = to_torch_dtype(v.dtype(), where);
  torch::Tensor out = torch::empty(v.shape(), torch::TensorOptions().dtype(st));
  if (v.nbytes) std::memcpy(out.data_ptr(), v.data, v.nbytes);
  return out;
}

}  // namespace safekey::tensor
