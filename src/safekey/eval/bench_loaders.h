// Inside the eval layer: the helpers the benchmark loaders share, and the loaders that live
// outside benchmarks.cpp (general-ability sets in loaders_general.cpp, the WildChat / WildJailbreak
// sets in loaders_wild.cpp). Users call load_benchmark() (benchmarks.h).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "safekey/eval/bench_item.h"
#include "safekey/util/json.h"

namespace safekey::eval::detail {

BenchItem single_turn(std::string id, std::string prompt, std::string source);
// The benchmark's file: its --bench-file override, else <data_dir>/<its default file>; records it
// in b.files.
// A missing file is an error naming the path, how to point at it, and `layout` (the expected
// columns) when given.
std::string need_file(const LoadOptions& o, Benchmark& b, const std::string& layout = "");
std::string src(const std::string& file, size_t line);
// One JSON object per line, each with its "file:line".
std::vector<std::pair<json, std::string>> read_jsonl(const std::string& f);
std::string json_scalar_text(const json& v);

void load_humaneval(const LoadOptions& o, Benchmark& b);
void load_gpqa(const LoadOptions& o, Benchmark& b);
void load_mmlu_pro(const LoadOptions& o, Benchmark& b);
void load_wildchat(const LoadOptions& o, Benchmark& b);
void load_wildjailbreak(const LoadOptions& o, Benchmark& b);

}  // namespace safekey::eval::detail
