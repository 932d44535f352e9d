// `safekey inspect --model DIR`: what an HF checkpoint folder holds — architecture, parameter count,
// dtypes, shards and a shapes summary — read from config.json and the safetensors headers only
// (no weights are loaded). Tensors that disagree with the config are reported as errors.
#include <cstdio>
#include <iostream>
#include <map>

#include "cli.h"
#include "safekey/io/safetensors.h"
#include "safekey/model/config.h"
#include "safekey/util/error.h"
#include "safekey/util/file.h"

namespace safekey {
namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

int run_inspect(cli::Args& args) {
  const std::string dir = args.required("model");
  SK_CHECK(is_directory(dir), dir, ": no such model folder");
  const std::string config_path = path_join(dir, "config.json");
  model::ModelConfig cfg = model::ModelConfig::from_file(config_path);
  io::Checkpoint ckpt = io::Checkpoint::open(dir);

  std::cout << "model:        " << dir << "\n"
            << "architecture: " << cfg.summary() << "\n"
            << "bos / eos:    ";
  for (auto b : cfg.bos_token_ids) std::cout << b << " ";
  std::cout << "/ ";
  for (auto e : cfg.eos_token_ids) std::cout << e << " ";
  std::cout << "\n";

  std::map<std::string, int64_t> by_dtype;  // dtype -> elements
  int64_t file_params = 0;
  uint64_t bytes = 0;
  for (const auto& name : ckpt.names()) {
    io::TensorView v = ckpt.get(name);
    by_dtype[io::dtype_name(v.dtype())] += v.info->numel();
    if (!(cfg.tie_word_embeddings && name == "lm_head.weight")) file_params += v.info->numel();
    bytes += v.nbytes;
  }
  std::cout << "files:        " << ckpt.files().size() << " safetensors file(s), " << ckpt.names().size()
            << " tensors, " << bytes << " bytes\n";
  std::cout << "parameters:   " << file_params << " in the files, " << cfg.num_parameters()
            << " implied by config.json\n";
  std::cout << "dtypes:      ";
  for (const auto& [d, n] : by_dtype) std::cout << " " << d << " x " << n;
  std::cout << "\n\nshapes (layer 0 stands for every layer):\n";
  for (const auto& p : cfg.parameter_shapes()) {
    bool layer_other = p.name.rfind("model.layers.", 0) == 0 && p.name.rfind("model.layers.0.", 0) != 0;
    SK_CHECK(ckpt.contains(p.name), ckpt.source(), ": missing tensor '", p.name, "' (required by ",
             config_path, ")");
    io::TensorView v = ckpt.get(p.name);
    SK_CHECK(v.shape() == p.shape, ckpt.file_of(p.name), ": tensor '", p.name, "' has shape ",
             shape_str(v.shape()), " but ", config_path, " implies ", shape_str(p.shape));
    if (layer_other) continue;
    std::printf("  %-48s %-14s %s\n", p.name.c_str(), shape_str(v.shape()).c_str(),
                io::dtype_name(v.dtype()));
  }
  return 0;
}

cli::Registrar reg({"inspect", "describe an HF model folder: architecture, parameters, dtypes, shapes",
                    "safekey inspect --model DIR", run_inspect});

}  // namespace
}  // namespace safekey
