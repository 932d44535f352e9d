#include "safekey/io/hf_folder.h"

#include "safekey/util/error.h"
#include "safekey/util/file.h"

namespace safekey::io {

const std::vector<std::string>& tokenizer_file_names() {
  static const std::vector<std::string> names = {
      "tokenizer.json",    "tokenizer_config.json", "special_tokens_map.json",
      "vocab.json",        "merges.txt",            "added_tokens.json",
      "chat_template.jinja", "generation_config.json"};
  return names;
}

std::vector<std::string> copy_tokenizer_files(const std::string& src, const std::string& dst_dir) {
  SK_CHECK(path_exists(src), src, ": no such file or directory (--tokenizer)");
  make_dirs(dst_dir);
  std::vector<std::string> copied;
  if (!is_directory(src)) {
    auto slash = src.find_last_of('/');
    std::string name = slash == std::string::npos ? src : src.substr(slash + 1);
    write_file_atomic(path_join(dst_dir, name), read_file(src));
    copied.push_back(name);
    return copied;
  }
  for (const auto& name : tokenizer_file_names()) {
    std::string p = path_join(src, name);
    if (!path_exists(p)) continue;
    write_file_atomic(path_join(dst_dir, name), read_file(p));
    copied.push_back(name);
  }
  bool has_main = false;
  for (const auto& c : copied) has_main |= c == "tokenizer.json" || c == "tokenizer_config.json";
  SK_CHECK(has_main, src, ": no tokenizer.json or tokenizer_config.json in this folder");
  return copied;
}

}  // namespace safekey::io
