// `safekey forward --model DIR --ids 1,2,3 [--key-mask 0,0,1,...] [--position-ids ...] --out F`:
// one forward pass over one sequence, writing float32 `logits` [T, V] and `hidden_states` [T, H]
// (after the final norm) to a safetensors file. A stable interface for external checks.
#include <cerrno>
#include <cstdlib>
#include <iostream>

#include "cli.h"
#include "model_setup.h"
#include "safekey/model/decoder.h"
#include "safekey/model/tensor_io.h"
#include "safekey/util/error.h"
#include "safekey/util/file.h"

namespace safekey {
namespace {

std::vector<int64_t> parse_ints(const std::string& flag, const std::string& text) {
  std::vector<int64_t> out;
  size_t i = 0;
  while (i <= text.size()) {
    size_t j = text.find(',', i);
    if (j == std::string::npos) j = text.size();
    std::string item = text.substr(i, j - i);
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    SK_CHECK(!item.empty(), "--", flag, ": empty entry at position ", out.size(), " in '", text, "'");
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(item.c_str(), &end, 10);
    SK_CHECK(errno == 0 && end && *end == '\0', "--", flag, ": '", item, "' at position ", out.size(),
             " is not an integer");
    out.push_back(v);
    i = j + 1;
  }
  return out;
}

int run_forward(cli::Args& args) {
  const std::string dir = args.required("model");
  const std::string out_path = args.required("out");
  std::vector<int64_t> ids = parse_ints("ids", args.required("ids"));
  const int64_t T = static_cast<int64_t>(ids.size());

  SK_CHECK(is_directory(dir), dir, ": no such model folder (--model)");
  model::ModelConfig cfg = model::ModelConfig::from_file(path_join(dir, "config.json"));
  for (size_t i = 0; i < ids.size(); ++i)
    SK_CHECK(ids[i] >= 0 && ids[i] < cfg.vocab_size, "--ids: token id ", ids[i], " at position ", i,
             " is outside the vocabulary [0, ", cfg.vocab_size, ") of ", dir, "/config.json");
  model::ForwardInput in;
  in.input_ids = torch::tensor(ids).view({1, T});
  if (args.given("key-mask")) {
    std::vector<int64_t> mask = parse_ints("key-mask", args.str("key-mask"));
    SK_CHECK(static_cast<int64_t>(mask.size()) == T, "--key-mask has ", mask.size(),
             " entries but --ids has ", T);
    for (size_t i = 0; i < mask.size(); ++i)
      SK_CHECK(mask[i] == 0 || mask[i] == 1, "--key-mask: entry ", i, " is ", mask[i], " (expected 0 or 1)");
    in.key_mask = torch::tensor(mask).view({1, T});
  }
  if (args.given("position-ids")) {
    std::vector<int64_t> pos = parse_ints("position-ids", args.str("position-ids"));
    SK_CHECK(static_cast<int64_t>(pos.size()) == T, "--position-ids has ", pos.size(),
             " entries but --ids has ", T);
    for (size_t i = 0; i < pos.size(); ++i)
      SK_CHECK(pos[i] >= 0, "--position-ids: entry ", i, " is negative");
    in.position_ids = torch::tensor(pos).view({1, T});
  }
  std::string dtype = args.str("dtype");
  dtype = dtype == "auto" ? "float32" : model::canonical_dtype_name(dtype, "--dtype");
  const torch::Device device = compute_device(args);

  model::DecoderModel m = model::load_model(dir, model::torch_dtype_from_name(dtype), device);
  apply_adapter_flag(args, m);
  torch::NoGradGuard no_grad;
  in.input_ids = in.input_ids.to(device);
  if (in.key_mask.defined()) in.key_mask = in.key_mask.to(device);
  if (in.position_ids.defined()) in.position_ids = in.position_ids.to(device);
  model::ForwardOutput out = m->forward(in);
  model::save_safetensors(out_path, {{"logits", out.logits[0].to(torch::kCPU, torch::kFloat)},
                                     {"hidden_states", out.hidden[0].to(torch::kCPU, torch::kFloat)}});
  std::cout << "wrote " << out_path << ": logits [" << T << ", " << cfg.vocab_size
            << "], hidden_states [" << T << ", " << cfg.hidden_size << "] (float32; computed in "
            << dtype << " on " << device << ")\n";
  return 0;
}

cli::Registrar reg({"forward", "run one forward pass and write logits and final hidden states",
                    "safekey forward --model DIR --ids 1,2,3 [--key-mask 0,1,1] --out out.safetensors",
                    run_forward});

}  // namespace
}  // namespace safekey
