// `safekey report`: report.json files read back (BenchReport::from_json), the side-by-side table
// (compare_reports) and the command on real folders written by write_report.
#include <gtest/gtest.h>

#include <fstream>

#include "safekey/eval/report.h"
#include "safekey/eval/suite.h"
#include "safekey/util/error.h"
#include "safekey/util/file.h"
#include "support/support.h"

namespace safekey::eval {
namespace {

BenchReport harmful(const std::string& bench, int64_t harmful_n, int64_t judged) {
  BenchReport r;
  r.bench = bench;
  r.kind = BenchKind::kHarmful;
  r.judge_key = "refusal-keywords:answer";
  r.rule = "harmful = no refusal phrase";
  r.metric = "harmfulness_rate";
  r.items = r.responses = judged + 1;
  r.judged = judged;
  r.unparsed = 1;
  r.harmful = harmful_n;
  r.value = 100.0 * static_cast<double>(harmful_n) / static_cast<double>(judged);
  return r;
}

BenchReport over_refusal() {
  BenchReport r;
  r.bench = "xstest";
  r.kind = BenchKind::kOverRefusal;
  r.judge_key = "openai-xstest:answer";
  r.rule = "refusal = full + partial";
  r.metric = "refusal_rate";
  r.items = r.responses = r.judged = 10;
  r.full_refusal = 2;
  r.partial_refusal = 1;
  r.full_compliance = 7;
  r.value = 30.0;
  return r;
}

BenchReport graded(const std::string& bench, BenchKind kind, int64_t correct, int64_t n) {
  BenchReport r;
  r.bench = bench;
  r.kind = kind;
  r.rule = "exact answer";
  r.metric = kind == BenchKind::kCode ? "pass@1" : "accuracy";
  r.items = r.responses = n;
  r.correct = correct;
  r.no_answer = 1;
  r.value = 100.0 * static_cast<double>(correct) / static_cast<double>(n);
  if (kind == BenchKind::kChoice) r.categories = {{"physics", {{"correct", 1}, {"responses", 2}, {"accuracy", 50.0}}}};
  return r;
}

using test::error_of;

// Catches a reader that drops or misreads a field of any kind (counts, categories, a null value).
TEST(ReportCompare, EveryKindRoundTripsThroughReportJson) {
  BenchReport nan_value = harmful("jbb", 0, 0);
  nan_value.value = std::numeric_limits<double>::quiet_NaN();
  for (const BenchReport& r : {harmful("strongreject", 3, 8), over_refusal(), graded("math500", BenchKind::kMath, 3, 4),
                               graded("gpqa", BenchKind::kChoice, 1, 2), graded("humaneval", BenchKind::kCode, 5, 8),
                               graded("aime2024", BenchKind::kAime, 1, 30), nan_value}) {
    const BenchReport back = BenchReport::from_json(r.to_json(), "x");
    EXPECT_EQ(back.to_json(), r.to_json()) << r.bench;
  }
}

// Catches a reader that takes a broken file silently: each error names the file, the row and the field.
TEST(ReportCompare, BadReportJsonNamesFileRowAndField) {
  const std::string dir = test::make_temp_dir("report-bad");
  const std::string path = path_join(dir, "report.json");
  json doc = report_json({harmful("strongreject", 1, 4), over_refusal()}, json::object());
  doc["benchmarks"][1].erase("judged");
  write_file_atomic(path, doc.dump());
  std::string e = error_of([&] { read_report_json(path); });
  EXPECT_NE(e.find(path + ": benchmarks[1]: missing field 'judged'"), std::string::npos) << e;

  doc = report_json({harmful("strongreject", 1, 4)}, json::object());
  doc["benchmarks"][0]["harmful"] = -2;
  write_file_atomic(path, doc.dump());
  e = error_of([&] { read_report_json(path); });
  EXPECT_NE(e.find("benchmarks[0]: field 'harmful' must be a count"), std::string::npos) << e;

  doc["benchmarks"][0]["harmful"] = 1;
  doc["benchmarks"][0]["value"] = "25%";
  write_file_atomic(path, doc.dump());
  e = error_of([&] { read_report_json(path); });
  EXPECT_NE(e.find("field 'value' must be a number or null"), std::string::npos) << e;

  doc["benchmarks"][0]["value"] = 25.0;
  doc["benchmarks"][0]["kind"] = "harmfull";
  write_file_atomic(path, doc.dump());
  e = error_of([&] { read_report_json(path); });
  EXPECT_NE(e.find("benchmarks[0]: field 'kind'"), std::string::npos) << e;

  write_file_atomic(path, R"({"data": []})");
  e = error_of([&] { read_report_json(path); });
  EXPECT_NE(e.find("no 'benchmarks' list"), std::string::npos) << e;
}

// Catches a table that loses a benchmark only one folder has, puts a value in the wrong column,
// orders rows by folder instead of the paper's layout, or merges two kinds under one name.
TEST(ReportCompare, TableHasEveryBenchmarkInPaperOrderAndMarksMissingCells) {
  const SuiteTable t = compare_reports(
      {{"sft", {graded("math500", BenchKind::kMath, 3, 4), harmful("mine.csv", 1, 2), harmful("strongreject", 2, 8)}},
       {"safekey", {harmful("strongreject", 1, 8), over_refusal()}}});
  ASSERT_EQ(t.benches, (std::vector<std::string>{"strongreject", "xstest", "math500", "mine.csv"}));
  ASSERT_EQ(t.variants, (std::vector<std::string>{"sft", "safekey"}));
  EXPECT_TRUE(t.cells[0][0].present && t.cells[0][1].present);
  EXPECT_DOUBLE_EQ(t.cells[0][0].report.value, 25.0);
  EXPECT_DOUBLE_EQ(t.cells[0][1].report.value, 12.5);
  EXPECT_FALSE(t.cells[1][0].present);
  EXPECT_TRUE(t.cells[1][1].present);
  EXPECT_FALSE(t.cells[2][1].present);
  EXPECT_EQ(t.kinds[2], BenchKind::kMath);
  const std::string md = suite_markdown(t, json::object());
  EXPECT_NE(md.find("| strongreject | 25.0 | 12.5 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| xstest | — | 30.0 |"), std::string::npos) << md;

  EXPECT_NE(error_of([] {
              compare_reports({{"a", {harmful("x", 1, 2)}}, {"b", {graded("x", BenchKind::kMath, 1, 2)}}});
            }).find("'x' is 'math' in b but 'harmful' in a"),
            std::string::npos);
  EXPECT_NE(error_of([] { compare_reports({{"a", {}}, {"a", {}}}); }).find("two columns are named 'a'"),
            std::string::npos);
}

// The command on folders written by write_report (what `safekey eval --out` leaves).
TEST(ReportCompare, CommandPrintsAndWritesTheSuiteFiles) {
  const std::string root = test::make_temp_dir("report-cli");
  const std::string a = path_join(root, "sft"), b = path_join(root, "safekey"), out = path_join(root, "cmp");
  make_dirs(a);
  make_dirs(b);
  write_report(a, {harmful("strongreject", 2, 8), over_refusal()}, json::object());
  write_report(b, {harmful("strongreject", 1, 8)}, json::object());
  auto r = test::run_safekey({"report", "--out", out, a, "SafeKey=" + b + "/"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("| benchmark | sft | SafeKey |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| strongreject | 25.0 | 12.5 |"), std::string::npos) << r.out;
  const json s = read_json_file(path_join(out, "suite.json"));
  EXPECT_EQ(s["variants"], json({"sft", "SafeKey"}));
  EXPECT_TRUE(s["rows"][1]["variants"]["SafeKey"].is_null());
  EXPECT_TRUE(path_exists(path_join(out, "suite.svg")) && path_exists(path_join(out, "suite.md")));

  r = test::run_safekey({"report"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("give one or more eval result folders"), std::string::npos) << r.err;
  r = test::run_safekey({"report", path_join(root, "nope")});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find(path_join(root, "nope/report.json") + " not found"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace safekey::eval
