// Files: whole-file reads with clear errors, atomic writes (temp file + fsync + rename), and a
// read-only memory map.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace safekey {

// Reads the whole file; throws Error naming the path when it cannot.
std::string read_file(const std::string& path);

// Writes `data` to `path` atomically: a temp file in the same folder, fsync, rename, fsync(dir).
// A crash leaves either the old file or the new one, never a torn one.
void write_file_atomic(const std::string& path, std::string_view data);

bool path_exists(const std::string& path);
bool is_directory(const std::string& path);
// mkdir -p; throws Error on failure.
void make_dirs(const std::string& path);
std::string path_join(const std::string& a, const std::string& b);
// Durably flushes a directory entry (after renames inside it).
void fsync_dir(const std::string& dir);

// A read-only memory map of a whole file.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace safekey
