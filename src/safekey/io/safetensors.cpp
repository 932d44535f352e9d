#include "safekey/io/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <set>

#include "safekey/util/error.h"
#include "safekey/util/file.h"
#include "safekey/util/json.h"

namespace safekey::io {

namespace {

struct DTypeRow {
  DType t;
  const char* name;
  size_t size;
};
constexpr DTypeRow kDTypes[] = {
    {DType::BOOL, "BOOL", 1}, {DType::U8, "U8", 1},     {DType::I8, "I8", 1},
    {DType::I16, "I16", 2},   {DType::U16, "U16", 2},   {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2}, {DType::I32, "I32", 4},   {DType::U32, "U32", 4},
    {DType::F32, "F32", 4},   {DType::F64, "F64", 8},   {DType::I64, "I64", 8},
    {DType::U64, "U64", 8},
};

// Headers above this size are rejected before parsing (the Rust reader's limit).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
  return out + "]";
}

// Parses one tensor entry; errors name the file and the tensor.
TensorInfo parse_entry(const std::string& name, const json& e, const std::string& where) {
  std::string at = cat(where, ": tensor '", name, "'");
  SK_CHECK(e.is_object(), at, ": header entry is not an object");
  TensorInfo t;
  t.name = name;
  auto dt = e.find("dtype");
  SK_CHECK(dt != e.end() && dt->is_string(), at, ": missing or non-string 'dtype'");
  SK_CHECK(parse_dtype(dt->get<std::string>(), &t.dtype), at, ": unknown dtype '",
           dt->get<std::string>(), "'");
  auto sh = e.find("shape");
  SK_CHECK(sh != e.end() && sh->is_array(), at, ": missing or non-array 'shape'");
  for (const auto& d : *sh) {
    SK_CHECK(d.is_number_unsigned() || (d.is_number_integer() && d.get<int64_t>() >= 0), at,
             ": shape entries must be non-negative integers");
    uint64_t v = d.get<uint64_t>();
    SK_CHECK(v <= (uint64_t{1} << 48), at, ": shape entry ", v, " is too large");
    t.shape.push_back(static_cast<int64_t>(v));
  }
  auto off = e.find("data_offsets");
  SK_CHECK(off != e.end() && off->is_array() && off->size() == 2, at,
           ": 'data_offsets' must be [begin, end]");
  for (const auto& d : *off)
    SK_CHECK(d.is_number_unsigned() || (d.is_number_integer() && d.get<int64_t>() >= 0), at,
             ": data_offsets must be non-negative integers");
  t.begin = (*off)[0].get<uint64_t>();
  t.end = (*off)[1].get<uint64_t>();
  SK_CHECK(t.begin <= t.end, at, ": data_offsets [", t.begin, ",", t.end, "] end before begin");
  uint64_t bytes = dtype_size(t.dtype);
  for (int64_t d : t.shape)
    SK_CHECK(!__builtin_mul_overflow(bytes, static_cast<uint64_t>(d), &bytes), at,
             ": shape ", shape_str(t.shape), " overflows");
  SK_CHECK(bytes == t.end - t.begin, at, ": shape ", shape_str(t.shape), " x ", dtype_name(t.dtype),
           " needs ", bytes, " bytes but data_offsets span ", t.end - t.begin);
  return t;
}

// Writes all bytes or throws naming `path`.
void write_all(int fd, const void* p, size_t n, const std::string& path) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    ssize_t w = ::write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    SK_CHECK(w > 0, path, ": write failed (", std::strerror(errno), ")");
    c += w;
    n -= static_cast<size_t>(w);
  }
}

}  // namespace

size_t dtype_size(DType t) { return kDTypes[static_cast<int>(t)].size; }
const char* dtype_name(DType t) { return kDTypes[static_cast<int>(t)].name; }
bool parse_dtype(const std::string& s, DType* out) {
  for (const auto& r : kDTypes)
    if (s == r.name) {
      *out = r.t;
      return true;
    }
  return false;
}

int64_t TensorInfo::numel() const {
  return std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<int64_t>());
}

size_t WriteTensor::nbytes() const {
  size_t n = dtype_size(dtype);
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  return n;
}

Header parse_header(const uint8_t* data, size_t size, const std::string& where) {
  SK_CHECK(size >= 8, where, ": truncated safetensors file (", size,
           " bytes, need at least 8 for the header length)");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | data[i];
  SK_CHECK(n <= kMaxHeaderBytes, where, ": header length ", n, " is implausible (corrupt file?)");
  SK_CHECK(n <= size - 8, where, ": header length ", n, " exceeds the file size ", size,
           " (truncated file?)");
  std::string text(reinterpret_cast<const char*>(data + 8), static_cast<size_t>(n));
  json j;
  try {
    j = json::parse(text);
  } catch (const std::exception& e) {
    fail(where, ": header is not valid JSON (", e.what(), ")");
  }
  SK_CHECK(j.is_object(), where, ": header is not a JSON object");
  Header h;
  h.data_start = 8 + n;
  const uint64_t data_bytes = size - h.data_start;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() == "__metadata__") {
      SK_CHECK(it->is_object() || it->is_null(), where, ": __metadata__ is not an object");
      if (it->is_null()) continue;
      for (auto m = it->begin(); m != it->end(); ++m) {
        SK_CHECK(m->is_string(), where, ": __metadata__ value '", m.key(), "' is not a string");
        h.metadata[m.key()] = m->get<std::string>();
      }
      continue;
    }
    h.tensors.push_back(parse_entry(it.key(), *it, where));
  }
  std::sort(h.tensors.begin(), h.tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expect = 0;
  for (const auto& t : h.tensors) {
    SK_CHECK(t.end <= data_bytes, where, ": tensor '", t.name, "': data_offsets [", t.begin, ",",
             t.end, "] lie outside the data section of ", data_bytes, " bytes (truncated file?)");
    SK_CHECK(t.begin >= expect, where, ": tensor '", t.name, "': data_offsets [", t.begin, ",",
             t.end, "] overlap the previous tensor (which ends at ", expect, ")");
    SK_CHECK(t.begin == expect, where, ": tensor '", t.name, "': gap in the data section before ",
             "offset ", t.begin);
    expect = t.end;
  }
  SK_CHECK(expect == data_bytes, where, ": data section has ", data_bytes,
           " bytes but the tensors cover ", expect);
  return h;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  SK_CHECK(path_exists(path), path, ": no such file");
  map_ = std::make_unique<MappedFile>(path);
  header_ = parse_header(map_->data(), map_->size(), path);
  for (size_t i = 0; i < header_.tensors.size(); ++i) index_[header_.tensors[i].name] = i;
}

SafetensorsFile::~SafetensorsFile() = default;

TensorView SafetensorsFile::get(const std::string& name) const {
  auto it = index_.find(name);
  SK_CHECK(it != index_.end(), path_, ": no tensor '", name, "'");
  const TensorInfo& t = header_.tensors[it->second];
  TensorView v;
  v.info = &t;
  v.data = map_->data() + header_.data_start + t.begin;
  v.nbytes = static_cast<size_t>(t.end - t.begin);
  return v;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  for (const auto& t : header_.tensors) out.push_back(t.name);
  return out;
}

Checkpoint Checkpoint::open(const std::string& path) {
  Checkpoint c;
  c.source_ = path;
  SK_CHECK(path_exists(path), path, ": no such file or directory");
  std::string index_path, single_path;
  if (is_directory(path)) {
    std::string idx = path_join(path, "model.safetensors.index.json");
    std::string one = path_join(path, "model.safetensors");
    if (path_exists(idx)) {
      index_path = idx;
    } else {
      SK_CHECK(path_exists(one), path, ": no model.safetensors or model.safetensors.index.json");
      single_path = one;
    }
  } else if (path.size() > 11 && path.compare(path.size() - 11, 11, ".index.json") == 0) {
    index_path = path;
  } else {
    single_path = path;
  }
  if (!single_path.empty()) {
    c.files_.push_back(std::make_shared<SafetensorsFile>(single_path));
    for (const auto& n : c.files_[0]->names()) c.where_[n] = 0;
    return c;
  }
  json idx = read_json_file(index_path);
  SK_CHECK(idx.is_object(), index_path, ": expected a JSON object");
  auto wm = idx.find("weight_map");
  SK_CHECK(wm != idx.end() && wm->is_object(), index_path, ": missing object 'weight_map'");
  std::string dir = index_path.substr(0, index_path.find_last_of('/') + 1);
  std::map<std::string, size_t> file_ids;
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    SK_CHECK(it->is_string(), index_path, ": weight_map['", it.key(), "'] is not a string");
    std::string f = it->get<std::string>();
    SK_CHECK(!f.empty() && f.find('/') == std::string::npos && f != "..", index_path,
             ": weight_map['", it.key(), "'] names an invalid file '", f, "'");
    auto fid = file_ids.find(f);
    if (fid == file_ids.end()) {
      fid = file_ids.emplace(f, c.files_.size()).first;
      c.files_.push_back(std::make_shared<SafetensorsFile>(dir + f));
    }
    SK_CHECK(c.files_[fid->second]->contains(it.key()), index_path, ": tensor '", it.key(),
             "' is listed in weight_map but missing from ", dir + f);
    c.where_[it.key()] = fid->second;
  }
  // Tensors present in a shard but absent from the map would be silently dropped: reject them.
  for (size_t i = 0; i < c.files_.size(); ++i)
    for (const auto& n : c.files_[i]->names())
      SK_CHECK(c.where_.count(n) && c.where_[n] == i, c.files_[i]->path(), ": tensor '", n,
               "' is not listed for this file in ", index_path);
  return c;
}

TensorView Checkpoint::get(const std::string& name) const {
  auto it = where_.find(name);
  SK_CHECK(it != where_.end(), source_, ": missing tensor '", name, "'");
  return files_[it->second]->get(name);
}

const std::string& Checkpoint::file_of(const std::string& name) const {
  auto it = where_.find(name);
  return it == where_.end() ? source_ : files_[it->second]->path();
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  for (const auto& kv : where_) out.push_back(kv.first);
  return out;
}

std::string build_header(const std::vector<WriteTensor>& tensors,
                         const std::map<std::string, std::string>& metadata) {
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (tensors[a].dtype != tensors[b].dtype) return tensors[a].dtype > tensors[b].dtype;
    return tensors[a].name < tensors[b].name;
  });
  std::string h = "{";
  if (!metadata.empty()) {
    h += "\"__metadata__\":{";
    bool first = true;
    for (const auto& kv : metadata) {
      h += (first ? "" : ",") + json(kv.first).dump() + ":" + json(kv.second).dump();
      first = false;
    }
    h += "}";
  }
  uint64_t off = 0;
  for (size_t k = 0; k < order.size(); ++k) {
    const WriteTensor& t = tensors[order[k]];
    if (h.size() > 1) h += ",";
    h += json(t.name).dump() + ":{\"dtype\":\"" + dtype_name(t.dtype) + "\",\"shape\":" +
         shape_str(t.shape) + ",\"data_offsets\":[" + std::to_string(off) + ",";
    off += t.nbytes();
    h += std::to_string(off) + "]}";
  }
  h += "}";
  h.append((8 - h.size() % 8) % 8, ' ');
  return h;
}

void write_safetensors(const std::string& path, const std::vector<WriteTensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::map<std::string, int> seen;
  for (const auto& t : tensors) {
    SK_CHECK(seen[t.name]++ == 0, path, ": tensor '", t.name, "' given twice");
    SK_CHECK(t.data || t.nbytes() == 0, path, ": tensor '", t.name, "' has no data");
  }
  std::string header = build_header(tensors, metadata);
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (tensors[a].dtype != tensors[b].dtype) return tensors[a].dtype > tensors[b].dtype;
    return tensors[a].name < tensors[b].name;
  });
  static std::atomic<unsigned> counter{0};
  std::string tmp = cat(path, ".tmp.", ::getpid(), ".", counter++);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  SK_CHECK(fd >= 0, tmp, ": cannot create (", std::strerror(errno), ")");
  try {
    uint8_t len[8];
    uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(n >> (8 * i));
    write_all(fd, len, 8, tmp);
    write_all(fd, header.data(), header.size(), tmp);
    for (size_t i : order) write_all(fd, tensors[i].data, tensors[i].nbytes(), tmp);
    SK_CHECK(::fsync(fd) == 0, tmp, ": fsync failed (", std::strerror(errno), ")");
    int rc = ::close(fd);
    fd = -1;
    SK_CHECK(rc == 0, tmp, ": close failed (", std::strerror(errno), ")");
    SK_CHECK(::rename(tmp.c_str(), path.c_str()) == 0, path, ": rename failed (",
             std::strerror(errno), ")");
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  auto slash = path.find_last_of('/');
  fsync_dir(slash == std::string::npos ? "." : path.substr(0, slash));
}

size_t LazyTensor::nbytes() const {
  size_t n = dtype_size(dtype);
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  return n;
}

std::vector<std::string> write_checkpoint(const std::string& dir, const std::vector<WriteTensor>& tensors,
                                          int64_t max_shard_bytes) {
  std::vector<LazyTensor> lazy;
  for (const auto& t : tensors)
    lazy.push_back({t.name, t.dtype, t.shape, [p = t.data] { return std::shared_ptr<const void>(p, [](const void*) {}); }});
  return write_checkpoint(dir, lazy, max_shard_bytes);
}

std::vector<std::string> write_checkpoint(const std::string& dir, const std::vector<LazyTensor>& tensors,
                                          int64_t max_shard_bytes) {
  make_dirs(dir);
  // Greedy split in the given order, as huggingface_hub's split_state_dict_into_shards does.
  std::vector<std::vector<const LazyTensor*>> shards(1);
  size_t cur = 0, total = 0;
  for (const auto& t : tensors) {
    size_t b = t.nbytes();
    total += b;
    if (!shards.back().empty() && cur + b > static_cast<size_t>(max_shard_bytes)) {
      shards.emplace_back();
      cur = 0;
    }
    shards.back().push_back(&t);
    cur += b;
  }
  // One shard's bytes at a time.
  auto write_shard = [&](const std::string& path, const std::vector<const LazyTensor*>& shard) {
    std::vector<std::shared_ptr<const void>> keep;
    std::vector<WriteTensor> w;
    for (const auto* t : shard) {
      keep.push_back(t->fetch());
      w.push_back({t->name, t->dtype, t->shape, keep.back().get()});
    }
    write_safetensors(path, w);
  };
  std::string index_path = path_join(dir, "model.safetensors.index.json");
  std::string single_path = path_join(dir, "model.safetensors");
  std::vector<std::string> written;
  std::set<std::string> keep_names;
  char buf[64];
  if (shards.size() == 1) {
    write_shard(single_path, shards[0]);
    written.push_back(single_path);
    keep_names.insert("model.safetensors");
  } else {
    json weight_map = json::object();
    for (size_t i = 0; i < shards.size(); ++i) {
      std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", i + 1, shards.size());
      std::string p = path_join(dir, buf);
      write_shard(p, shards[i]);
      written.push_back(p);
      keep_names.insert(buf);
      for (const auto* t : shards[i]) weight_map[t->name] = buf;
    }
    json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    write_file_atomic(index_path, index.dump(2) + "\n");
    written.push_back(index_path);
    keep_names.insert("model.safetensors.index.json");
  }
  // Stale files of an earlier save: the other layout, or shards of another count.
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    const bool ours = n == "model.safetensors" || n == "model.safetensors.index.json" ||
                      (n.rfind("model-", 0) == 0 && n.find("-of-") != std::string::npos &&
                       n.size() > 12 && n.compare(n.size() - 12, 12, ".safetensors") == 0);
    if (ours && !keep_names.count(n)) std::filesystem::remove(e.path());
  }
  return written;
}

}  // namespace safekey::io
