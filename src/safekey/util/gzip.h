// Reading gzip files (zlib): HumanEval ships as HumanEval.jsonl.gz and is read as is.
#pragma once
#include <string>

namespace safekey {

// The decompressed contents of a gzip file (several concatenated members are read in order);
// throws Error naming the path when it is missing or not valid gzip.
std::string read_gzip_file(const std::string& path);

// True when `path` ends in ".gz".
bool is_gzip_path(const std::string& path);

}  // namespace safekey
