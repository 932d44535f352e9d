// safetensors checkpoints without libtorch: raw memory-mapped views with dtype and shape, strict
// header validation, and atomic writes in the layout Hugging Face's writer produces.
//
// File layout: u64 little-endian header length N, N bytes of JSON header (padded with spaces to a
// multiple of 8), then the raw little-endian tensor data. The header maps each tensor name to
// {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the data start) and may carry
// "__metadata__": {string: string}. Conversion to torch tensors lives in model/ (checkpoint.cpp).
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace safekey {
class MappedFile;
}

namespace safekey::io {

// The dtypes of the format. The enum order is the Rust writer's dtype order, which decides where a
// tensor goes in the data section (larger dtypes first).
enum class DType { BOOL, U8, I8, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64 };

size_t dtype_size(DType t);               // bytes per element
const char* dtype_name(DType t);          // "F32", ...
bool parse_dtype(const std::string& s, DType* out);

// One tensor entry of a header; offsets are relative to the data section.
struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
  int64_t numel() const;
};

struct Header {
  std::vector<TensorInfo> tensors;             // in data order
  std::map<std::string, std::string> metadata; // "__metadata__"
  uint64_t data_start = 0;                     // 8 + N
};

// Parses and validates a whole file image (header + data). Checks: file at least 8 bytes, header
// length within the file, valid JSON object, known dtypes, non-negative integer shapes, offsets with
// begin <= end inside the data section, numel x dtype size == end - begin, no two tensors overlap,
// every data byte covered. Errors throw safekey::Error naming `where` and the tensor.
Header parse_header(const uint8_t* data, size_t size, const std::string& where);

// A read-only view of one tensor inside a mapped file (valid while the file is open).
struct TensorView {
  const TensorInfo* info = nullptr;
  const uint8_t* data = nullptr;  // first byte
  size_t nbytes = 0;
  const std::string& name() const { return info->name; }
  DType dtype() const { return info->dtype; }
  const std::vector<int64_t>& shape() const { return info->shape; }
};

// One memory-mapped .safetensors file.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  const std::string& path() const { return path_; }
  const Header& header() const { return header_; }
  bool contains(const std::string& name) const { return index_.count(name) > 0; }
  // Throws "<path>: no tensor '<name>'" when absent.
  TensorView get(const std::string& name) const;
  std::vector<std::string> names() const;  // in data order

 private:
  std::string path_;
  std::unique_ptr<MappedFile> map_;
  Header header_;
  std::map<std::string, size_t> index_;
};

// A checkpoint that may be split into shards: either one model.safetensors or the shards listed by
// model.safetensors.index.json ({"metadata": {...}, "weight_map": {tensor: file}}).
class Checkpoint {
 public:
  // `path` is a folder (model.safetensors.index.json preferred, else model.safetensors) or a file
  // (.safetensors, or an .index.json).
  static Checkpoint open(const std::string& path);
  bool contains(const std::string& name) const { return where_.count(name) > 0; }
  TensorView get(const std::string& name) const;
  // The file a tensor lives in (for error messages).
  const std::string& file_of(const std::string& name) const;
  std::vector<std::string> names() const;  // sorted
  const std::vector<std::shared_ptr<SafetensorsFile>>& files() const { return files_; }
  const std::string& source() const { return source_; }  // the folder / index / file opened

 private:
  std::string source_;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> where_;  // tensor name -> index in files_
};

// A tensor to write: bytes are taken from `data` (numel x dtype size bytes, C order).
struct WriteTensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  size_t nbytes() const;
};

// The header bytes (with padding) for `tensors` in HF's layout: data sorted by dtype (larger first)
// then name, "__metadata__" first, compact JSON, spaces up to a multiple of 8.
std::string build_header(const std::vector<WriteTensor>& tensors,
                         const std::map<std::string, std::string>& metadata);

// Writes one file atomically (temp file in the same folder, fsync, rename). Default metadata is
// {"format": "pt"} as HF writes it.
void write_safetensors(const std::string& path, const std::vector<WriteTensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

// Writes `tensors` into `dir` as HF's save_pretrained does: one `model.safetensors` when the total
// fits in max_shard_bytes, else `model-0000i-of-0000n.safetensors` shards (filled greedily in the
// given order) plus `model.safetensors.index.json`. Stale files of an earlier save (the other
// layout, shards of another count) are removed. Returns the files written (index last).
std::vector<std::string> write_checkpoint(const std::string& dir,
                                          const std::vector<WriteTensor>& tensors,
                                          int64_t max_shard_bytes);

// A tensor whose bytes are produced only when its shard is written (fetch() returns them and keeps
// them alive until released), so a save holds one shard's data at a time.
struct LazyTensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::function<std::shared_ptr<const void>()> fetch;
  size_t nbytes() const;
};
std::vector<std::string> write_checkpoint(const std::string& dir, const std::vector<LazyTensor>& tensors,
                                          int64_t max_shard_bytes);

}  // namespace safekey::io
