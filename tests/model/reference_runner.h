// Running the independent float64 decoder reference (tests/reference/decoder_ref.py, Python 3 +
// numpy) and the `safekey` executable from a test, and comparing their outputs.
#pragma once
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "safekey/model/tensor_io.h"
#include "safekey/util/file.h"
#include "support/support.h"

namespace safekey::test {

// Debian's interpreter (python3 on PATH may be another one without numpy); SAFEKEY_PYTHON
// overrides.
inline std::string reference_python() { return env_or("SAFEKEY_PYTHON", "/usr/bin/python3"); }
inline std::string reference_script() {
  return std::string(SAFEKEY_SOURCE_DIR) + "/tests/reference/decoder_ref.py";
}

// "" when numpy imports, else the reason (the caller skips: numpy is the one optional dependency).
inline std::string numpy_missing_reason() {
  RunResult r = run_process({reference_python(), "-c", "import numpy"});
  if (r.exit_code == 0) return "";
  return reference_python() +
         " cannot import numpy (install python3-numpy, scripts/install_test_refs.sh): " + r.err;
}

#define SAFEKEY_REQUIRE_NUMPY()                                 \
  do {                                                          \
    std::string why_ = ::safekey::test::numpy_missing_reason(); \
    if (!why_.empty()) GTEST_SKIP() << why_;                    \
  } while (0)

inline std::string join_ints(const std::vector<int64_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s;
}

// Every tensor of a .safetensors file by name (CPU copies in their stored dtype).
inline std::map<std::string, torch::Tensor> read_tensors(const std::string& path) {
  std::map<std::string, torch::Tensor> out;
  for (auto& [name, t] : model::load_safetensors(path)) out[name] = t;
  return out;
}

// Runs the reference; `args` are its flags after --model (e.g. {"--ids", "1,2"}). Returns its
// output tensors: float64 logits / hidden_states, int64 input_ids.
inline std::map<std::string, torch::Tensor> run_reference(const std::string& model_dir,
                                                          std::vector<std::string> args,
                                                          const std::string& out_path) {
  std::vector<std::string> argv = {
      reference_python(), reference_script(), "--model", model_dir, "--out", out_path};
  argv.insert(argv.end(), args.begin(), args.end());
  RunResult r = run_process(argv);
  EXPECT_EQ(r.exit_code, 0) << "decoder_ref.py failed: " << r.err;
  if (r.exit_code != 0) return {};
  return read_tensors(out_path);
}

// `safekey forward` in float32 on the CPU; returns float32 logits [T, V] and hidden_states [T, H].
inline std::map<std::string, torch::Tensor> run_safekey_forward(const std::string& model_dir,
                                                                const std::vector<int64_t>& ids,
                                                                const std::string& out_path) {
  RunResult r = run_safekey({"forward", "--model", model_dir, "--ids", join_ints(ids), "--out",
                             out_path, "--dtype", "float32"});
  EXPECT_EQ(r.exit_code, 0) << "safekey forward failed: " << r.err;
  if (r.exit_code != 0) return {};
  return read_tensors(out_path);
}

// max |a - b| over all entries, in float64.
inline double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

}  // namespace safekey::test
