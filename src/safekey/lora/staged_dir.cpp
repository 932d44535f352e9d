#include "safekey/lora/staged_dir.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "safekey/util/error.h"
#include "safekey/util/file.h"

namespace fs = std::filesystem;

namespace safekey::lora {

bool absent_or_empty(const std::string& dir) {
  if (!path_exists(dir)) return true;
  return is_directory(dir) && fs::is_empty(dir);
}

static std::string parent_of(const std::string& dir) {
  std::string p = fs::path(dir).lexically_normal().parent_path().string();
  return p.empty() ? "." : p;
}

StagedDir::StagedDir(std::string final_dir) : final_(std::move(final_dir)) {
  // A trailing slash would put the temp folder inside the final one.
  while (final_.size() > 1 && final_.back() == '/') final_.pop_back();
  SK_CHECK(absent_or_empty(final_), final_,
           ": already exists and is not an empty folder (choose a new folder or remove it)");
  tmp_ = cat(final_, ".tmp.", ::getpid());
  std::error_code ec;
  fs::remove_all(tmp_, ec);  // left by an earlier crash of a process with the same id
  make_dirs(tmp_);
}

StagedDir::~StagedDir() {
  if (committed_) return;
  std::error_code ec;
  fs::remove_all(tmp_, ec);
}

void StagedDir::commit() {
  fsync_dir(tmp_);
  // An empty final folder is replaced by the rename; one that filled up meanwhile is an error.
  SK_CHECK(::rename(tmp_.c_str(), final_.c_str()) == 0, final_, ": cannot move ", tmp_,
           " into place (", std::strerror(errno), ")");
  committed_ = true;
  fsync_dir(parent_of(final_));
}

}  // namespace safekey::lora
