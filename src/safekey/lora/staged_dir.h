// A folder written all or nothing: files go into a sibling temp folder that one rename turns into
// the final folder, so a crash or an error on the way leaves either no folder or a complete one.
#pragma once
#include <string>

namespace safekey::lora {

class StagedDir {
 public:
  // `final_dir` must not exist or be empty (rename can only replace an empty folder); errors
  // otherwise. Creates "<final_dir>.tmp.<pid>" beside it.
  explicit StagedDir(std::string final_dir);
  // Removes the temp folder when commit() was not reached.
  ~StagedDir();
  StagedDir(const StagedDir&) = delete;
  StagedDir& operator=(const StagedDir&) = delete;

  const std::string& path() const { return tmp_; }
  // fsyncs the temp folder and renames it onto the final folder.
  void commit();

 private:
  std::string final_, tmp_;
  bool committed_ = false;
};

// True when `dir` does not exist or is an empty folder.
bool absent_or_empty(const std::string& dir);

}  // namespace safekey::lora
