// `safekey report`: the report.json files of earlier `safekey eval` runs side by side — one column per
// folder, rows grouped as the paper's tables — printed as Markdown and, with --out, written as
// suite.md, suite.json and suite.svg. Nothing is generated, judged or graded (`eval --compare` does
// that first when a folder's labels may be stale).
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "cli.h"
#include "safekey/eval/report.h"
#include "safekey/eval/suite.h"
#include "safekey/util/error.h"
#include "safekey/util/file.h"

namespace safekey {
namespace {

// "NAME=DIR" or "DIR" (named after its last path component).
std::pair<std::string, std::string> column_of(const std::string& arg) {
  const size_t eq = arg.find('=');
  if (eq != std::string::npos) {
    SK_CHECK(eq > 0 && eq + 1 < arg.size(), "report: '", arg, "' must be NAME=DIR or DIR");
    return {arg.substr(0, eq), arg.substr(eq + 1)};
  }
  std::string dir = arg;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return {dir.substr(dir.find_last_of('/') + 1), arg};
}

int run_report(cli::Args& a) {
  SK_CHECK(!a.positional().empty(), "report: give one or more eval result folders (NAME=DIR or DIR)");
  std::vector<std::pair<std::string, std::vector<eval::BenchReport>>> columns;
  json meta = json::object();
  for (const auto& arg : a.positional()) {
    const auto [name, dir] = column_of(arg);
    const std::string path = path_join(dir, "report.json");
    SK_CHECK(path_exists(path), "report: ", path, " not found (run `safekey eval --out ", dir, "` first)");
    columns.emplace_back(name, eval::read_report_json(path));
    meta["variant " + name] = dir;
  }
  const eval::SuiteTable t = eval::compare_reports(columns);
  std::cout << eval::suite_markdown(t, meta);
  const std::string out = a.str("out");
  if (!out.empty()) {
    make_dirs(out);
    eval::write_suite(out, t, meta);
    std::cout << "\nwrote " << path_join(out, "suite.md") << ", suite.json, suite.svg\n";
  }
  return 0;
}

cli::Registrar reg({"report", "eval result folders side by side (their report.json): a Markdown table, and suite.md/json/svg with --out",
                    "safekey report [--out DIR] [NAME=]DIR [[NAME=]DIR ...]\n"
                    "  each DIR holds report.json from `safekey eval --out DIR`; docs/evaluation.md, \"Reports side by side\"",
                    run_report});

}  // namespace
}  // namespace safekey
