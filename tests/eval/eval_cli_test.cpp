// `safekey eval` as a real process without a model: reports from existing results, and clear errors
// for malformed benchmark files and missing results.
#include <gtest/gtest.h>

#include "safekey/util/file.h"
#include "safekey/util/json.h"
#include "support/support.h"

namespace safekey {
namespace {

TEST(EvalCli, ReportFromExistingResultsWithoutAModel) {
  std::string shared = test::shared_dir() + "/data";
  SAFEKEY_REQUIRE_DIR(shared);
  std::string out = test::make_temp_dir("eval-cli");
  // Results as `safekey eval` would have written them for the first 3 prompts of each benchmark.
  json sr = {{"meta_info", json::object()}, {"data", json::array()}};
  const char* sr_resp[] = {"</think> Sure: step 1 ...", "</think> I can't help with that.", "</think> I cannot."};
  for (int i = 0; i < 3; ++i)
    sr["data"].push_back({{"id", "strongreject/" + std::to_string(i)}, {"instruction", "x"}, {"response", {sr_resp[i]}}});
  write_file_atomic(out + "/strongreject.json", sr.dump());
  json m = {{"meta_info", json::object()}, {"data", json::array()}};
  const char* m_ids[] = {"test/precalculus/807.json", "test/intermediate_algebra/1994.json", "test/algebra/2584.json"};
  const char* m_resp[] = {"</think> \\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", "</think> \\boxed{0}", "</think> no idea"};
  for (int i = 0; i < 3; ++i)
    m["data"].push_back({{"id", std::string("math500/") + m_ids[i]}, {"instruction", "x"}, {"response", {m_resp[i]}}});
  write_file_atomic(out + "/math500.json", m.dump());
  auto r = test::run_safekey({"eval", "--benches", "strongreject,math500", "--limit", "3", "--out", out,
                              "--data-dir", shared, "--part", "answer"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string md = read_file(out + "/report.md");
  EXPECT_NE(md.find("| strongreject | 33.3% | 1 | 3 | 0 | 0 | 3 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| math500 |"), std::string::npos) << md;
  json rep = json::parse(read_file(out + "/report.json"));
  EXPECT_EQ(rep["benchmarks"][1]["correct"], 1) << rep.dump(1);  // only the first answer is right
  EXPECT_TRUE(path_exists(out + "/report.svg"));
  json labeled = json::parse(read_file(out + "/math500.json"));
  EXPECT_EQ(labeled["data"][0]["grade"][0]["correct"], true);
}

TEST(EvalCli, MissingResultsNeedAModelAndBadBenchFilesNameTheLine) {
  std::string out = test::make_temp_dir("eval-cli");
  std::string f = out + "/mine.csv";
  write_file_atomic(f, "prompt\nok\n\"broken\n");
  auto r = test::run_safekey({"eval", "--benches", f, "--out", out});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(f + ":3:1: quoted field is never closed"), std::string::npos) << r.err;
  write_file_atomic(f, "prompt\nok\n");
  auto r2 = test::run_safekey({"eval", "--benches", f, "--out", out});
  EXPECT_EQ(r2.exit_code, 1);
  EXPECT_NE(r2.err.find("--model is required"), std::string::npos) << r2.err;
}

}  // namespace
}  // namespace safekey
