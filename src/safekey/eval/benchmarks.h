// Benchmark loaders: a name -> the list of prompts to generate for and judge (PAPER.md section 4.1,
// SPEC.md section 5). Files are read from the shared data folder (data/SOURCES.md lists them);
// docs/evaluation.md has the table of names, files, filters and counts.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "safekey/eval/bench_item.h"
#include "safekey/util/json.h"

namespace safekey::eval {

const char* bench_kind_name(BenchKind k);
// Kinds scored by a grader (item["grade"]) rather than a judge.
bool bench_kind_is_graded(BenchKind k);
BenchKind bench_kind_from_name(const std::string& s);  // throws on unknown

// Built-in names, in documentation order.
std::vector<std::string> builtin_benchmarks();
// A built-in benchmark's kind and its default file under the data folder; throws on unknown names
// (the message lists the built-in names).
BenchKind builtin_kind(const std::string& name);
std::string builtin_default_file(const std::string& name);
// `name` is a built-in name or a path to a .csv/.json/.jsonl file (optionally "file:PATH").
Benchmark load_benchmark(const std::string& name, const LoadOptions& opts);

// The default data folder: $SAFEKEY_SHARED_DIR/data when set, else ../shared/data relative to the
// working directory.
std::string default_data_dir();

// The prompt suffix used for MATH-500 / AIME (DeepSeek-R1's recommended math instruction).
extern const char* const kMathInstruction;

// Parses JSON text; on error throws "<where>:line:column: invalid JSON: ...".
json parse_json_located(const std::string& text, const std::string& where, size_t first_line = 1);

}  // namespace safekey::eval
