#include "safekey/lora/merge.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include "safekey/io/safetensors.h"
#include "safekey/lora/peft.h"
#include "safekey/lora/staged_dir.h"
#include "safekey/tensor/safetensors_torch.h"
#include "safekey/util/error.h"
#include "safekey/util/file.h"

namespace fs = std::filesystem;

namespace safekey::lora {
namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// Weight files (and their indexes) of any framework: the merged safetensors replace them, and a
// copied pickle or GGUF would hold the unmerged weights under the merged model's name.
bool is_weight_file(const std::string& name) {
  for (const char* ext :
       {".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".gguf"})
    if (ends_with(name, ext) || ends_with(name, std::string(ext) + ".index.json")) return true;
  return false;
}

// `p` is `dir` or lies inside it.
bool inside(const fs::path& p, const fs::path& dir) {
  const fs::path rel = p.lexically_relative(dir);
  return !rel.empty() && *rel.begin() != "..";
}

bool is_float(io::DType t) {
  return t == io::DType::F32 || t == io::DType::BF16 || t == io::DType::F16 || t == io::DType::F64;
}

}  // namespace

MergeReport merge_adapter(const std::string& base_dir, const std::string& adapter_dir,
                          const std::string& out_dir) {
  SK_CHECK(is_directory(base_dir), base_dir, ": no such model folder");
  SK_CHECK(path_exists(path_join(base_dir, "config.json")), base_dir,
           ": no config.json (not an HF model folder)");
  // The final rename must not hide or replace an input.
  const fs::path base = fs::weakly_canonical(base_dir), out = fs::weakly_canonical(out_dir);
  SK_CHECK(!inside(base, out), out_dir, ": the output folder must not be the base model folder ",
           base_dir, " or contain it");
  SK_CHECK(!inside(fs::weakly_canonical(adapter_dir), out), out_dir,
           ": the output folder must not be the adapter folder ", adapter_dir, " or contain it");

  const Adapter a = load_adapter(adapter_dir);
  const std::string adapter_file = path_join(adapter_dir, kWeightsFile);
  const io::Checkpoint ckpt = io::Checkpoint::open(base_dir);

  // Every module is checked before anything is written.
  std::map<std::string, const ModuleAdapter*> by_weight;  // "<path>.weight" -> its A, B
  for (const auto& [path, m] : a.modules) {
    const std::string wname = path + ".weight";
    const std::string where = cat(adapter_file, ": module '", path, "'");
    SK_CHECK(ckpt.contains(wname), where, ": the base model ", base_dir, " has no tensor '", wname,
             "'");
    const io::TensorView v = ckpt.get(wname);
    const std::vector<int64_t> delta_shape = {m.B.size(0), m.A.size(1)};
    SK_CHECK(v.shape() == delta_shape, where, ": B ", shape_str(m.B.sizes().vec()), " @ A ",
             shape_str(m.A.sizes().vec()), " is ", shape_str(delta_shape), " but '", wname, "' in ",
             ckpt.file_of(wname), " is ", shape_str(v.shape()));
    SK_CHECK(is_float(v.dtype()), where, ": '", wname, "' in ", ckpt.file_of(wname), " has dtype ",
             io::dtype_name(v.dtype()), " (only floating-point weights can be merged)");
    by_weight[wname] = &m;
  }

  const double scale = a.config.scale();
  StagedDir staged(out_dir);
  MergeReport report;
  report.scale = scale;
  // One base shard at a time: copied tensors are written straight from the mapped file, and only
  // this shard's merged weights are held in memory.
  for (const auto& file : ckpt.files()) {
    const std::string name = fs::path(file->path()).filename().string();
    std::vector<torch::Tensor> merged;
    std::vector<io::WriteTensor> w;
    for (const auto& tname : file->names()) {
      const io::TensorView v = file->get(tname);
      auto it = by_weight.find(tname);
      if (it == by_weight.end()) {
        w.push_back({tname, v.dtype(), v.shape(), v.data});
        continue;
      }
      const ModuleAdapter& m = *it->second;
      torch::Tensor W =
          tensor::tensor_from_view(v, cat(file->path(), ": tensor '", tname, "'"));  // [out, in]
      // float32 for the update whatever the storage dtype: B @ A summed over r in bf16 would lose
      // the small delta against W; one rounding back to W's dtype at the end.
      // Scale, then add: two plain roundings (add's alpha may fuse into one multiply-add), so the
      // result is exactly the written formula's.
      torch::Tensor delta =
          torch::mm(m.B.to(torch::kFloat), m.A.to(torch::kFloat)) * scale;  // [out, r] @ [r, in]
      merged.push_back((W.to(torch::kFloat) + delta).to(W.scalar_type()).contiguous());
      w.push_back({tname, v.dtype(), v.shape(), merged.back().data_ptr()});
      ++report.merged_modules;
    }
    io::write_safetensors(path_join(staged.path(), name), w, file->header().metadata);
    report.tensors += static_cast<int64_t>(w.size());
    report.files.push_back(name);
  }
  // Same shards, same shapes and dtypes: BASE's index (weight_map, total_size) holds unchanged.
  const std::string index = path_join(base_dir, "model.safetensors.index.json");
  if (path_exists(index)) {
    write_file_atomic(path_join(staged.path(), "model.safetensors.index.json"), read_file(index));
    report.files.push_back("model.safetensors.index.json");
  }
  // config.json, tokenizer files, generation config, chat templates, README, ...: everything that
  // is not a weight file. (Regular files only; links are followed, as in HF's cache folders.)
  for (const auto& e : fs::directory_iterator(base_dir)) {
    const std::string fname = e.path().filename().string();
    if (!fs::is_regular_file(e.path()) || is_weight_file(fname) || fname.rfind(".", 0) == 0)
      continue;
    write_file_atomic(path_join(staged.path(), fname), read_file(e.path().string()));
    report.files.push_back(fname);
  }
  std::sort(report.files.begin(), report.files.end());
  staged.commit();
  return report;
}

}  // namespace safekey::lora
