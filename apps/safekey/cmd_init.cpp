// `safekey init --config CONFIG.json --seed S --out DIR [--dtype D] [--tokenizer PATH]`: a randomly
// initialised HF checkpoint with HF's init (normal(0, initializer_range) weights, zero biases, unit
// norms), plus copies of the tokenizer files when given.
#include <iostream>

#include "cli.h"
#include "safekey/io/hf_folder.h"
#include "safekey/model/decoder.h"
#include "safekey/model/tensor_io.h"
#include "safekey/util/error.h"
#include "safekey/util/file.h"

namespace safekey {
namespace {

int run_init(cli::Args& args) {
  const std::string config_path = args.required("config");
  const std::string out = args.required("out");
  SK_CHECK(path_exists(config_path), config_path, ": no such file (--config)");
  model::ModelConfig cfg = model::ModelConfig::from_file(config_path);
  std::string dtype = args.str("dtype");
  dtype = dtype == "auto" ? cfg.torch_dtype : model::canonical_dtype_name(dtype, "--dtype");
  const int64_t seed = args.i64("seed");
  SK_CHECK(seed >= 0, "--seed must be non-negative, got ", seed);
  const int64_t shard = args.i64("max-shard-size");
  SK_CHECK(shard > 0, "--max-shard-size must be positive");

  model::DecoderModel m(cfg);
  model::init_weights(m, static_cast<uint64_t>(seed));
  model::save_model(m, out, shard, dtype);
  std::cout << "wrote " << out << ": " << cfg.summary() << ", " << cfg.num_parameters()
            << " parameters, " << dtype << ", seed " << seed << "\n";
  if (args.given("tokenizer")) {
    auto copied = io::copy_tokenizer_files(args.str("tokenizer"), out);
    std::cout << "copied tokenizer files:";
    for (const auto& c : copied) std::cout << " " << c;
    std::cout << "\n";
  }
  return 0;
}

cli::Registrar reg({"init", "create a randomly initialised HF checkpoint from a config.json",
                    "safekey init --config CONFIG.json --seed 1 --out DIR [--dtype bfloat16] "
                    "[--tokenizer tokenizer.json]",
                    run_init});

}  // namespace
}  // namespace safekey
