// Line-by-line JSON input of `safekey tokenize` and `safekey detokenize`: a file or "-" for stdin,
// blank lines skipped, every value parsed with its "path:line" for error messages.
#pragma once
#include <fstream>
#include <functional>
#include <iostream>
#include <string>

#include "safekey/util/error.h"
#include "safekey/util/json.h"

namespace safekey {

inline void for_each_jsonl_value(const std::string& path,
                                 const std::function<void(const json&, const std::string& where)>& fn) {
  std::ifstream file;
  if (path != "-") {
    file.open(path, std::ios::binary);
    SK_CHECK(file, path, ": cannot open");
  }
  std::istream& in = path == "-" ? std::cin : file;
  std::string line;
  for (size_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = cat(path, ":", n);
    fn(parse_json(line, where), where);
  }
}

}  // namespace safekey
