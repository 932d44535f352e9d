// Benchmark suites and the paper-layout table (docs/evaluation.md, "Suites"): rows are benchmarks
// (grouped as the paper's tables: harmfulness, over-refusal, general ability), columns are model
// variants (one per evaluated results folder), written as suite.md, suite.json and suite.svg.
#pragma once
#include <string>
#include <vector>

#include "safekey/eval/report.h"
#include "safekey/util/json.h"

namespace safekey::eval {

// "safety" | "reasoning" | "paper" (both); throws naming the suites for anything else.
std::vector<std::string> suite_benchmarks(const std::string& suite);
std::vector<std::string> suite_names();

// Where a built-in benchmark's file is looked for (its --bench-file override, else under the data
// folder); the suite skips benchmarks whose file is not there.
std::string benchmark_file(const std::string& name, const LoadOptions& opts);

struct SuiteCell {
  bool present = false;  // this variant has figures for this benchmark
  BenchReport report;
};

struct SuiteTable {
  std::string suite;
  std::vector<std::string> variants;                         // column names
  std::vector<std::string> benches;                          // row names, in suite order
  std::vector<BenchKind> kinds;                              // per row
  std::vector<std::vector<SuiteCell>> cells;                 // [row][variant]
  std::vector<std::pair<std::string, std::string>> skipped;  // benchmark, why
};

// Results folders side by side (`safekey report`): one column per (name, rows of its report.json);
// the rows are every benchmark any column has, the paper suite's first in its order, then the others
// in the order first seen. A benchmark with different kinds in two columns is an error naming both.
SuiteTable compare_reports(const std::vector<std::pair<std::string, std::vector<BenchReport>>>& columns);

std::string suite_markdown(const SuiteTable& t, const json& meta);
json suite_json(const SuiteTable& t, const json& meta);
// Grouped horizontal bars: one group per benchmark, one bar per variant, 0..100 %.
std::string suite_bar_chart_svg(const SuiteTable& t);
// Writes suite.md, suite.json and suite.svg into `dir`.
void write_suite(const std::string& dir, const SuiteTable& t, const json& meta);

}  // namespace safekey::eval
