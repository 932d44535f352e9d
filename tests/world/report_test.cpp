// The demo report: confidence intervals, paired differences, tables and pictures.
#include <gtest/gtest.h>

#include "safekey/world/report.h"

using namespace safekey;
using namespace safekey::world;

namespace {
ModelEval model(const std::string& method, int64_t seed, double harm, double acc) {
  ModelEval m;
  m.method = method;
  m.seed = seed;
  SplitScore h;
  h.n = 10;
  h.harmful = harm;
  m.splits["harmful_heldout_wrappers"] = h;
  SplitScore g;
  g.n = 10;
  g.accuracy = acc;
  m.splits["general"] = g;
  return m;
}
}  // namespace

TEST(WorldReport, MeanCi) {
  const Interval a = mean_ci({1.0, 2.0, 3.0});
  EXPECT_DOUBLE_EQ(a.mean, 2.0);
  EXPECT_NEAR(a.half, 4.303 * 1.0 / std::sqrt(3.0), 1e-9);  // sd = 1, t(2) = 4.303
  EXPECT_EQ(mean_ci({0.5}).half, 0.0);
  EXPECT_EQ(mean_ci({}).n, 0);
}

TEST(WorldReport, PairedDifferenceAndTables) {
  ReportInput in;
  for (int s = 1; s <= 3; ++s) {
    in.models.push_back(model("sft", s, 0.5 + 0.1 * s, 0.9));
    in.models.push_back(model("safekey", s, 0.3 + 0.1 * s, 0.9));
  }
  const json j = report_json(in);
  const auto& d = j["paired_safekey_minus_sft"]["harmful: held-out wrappers"];
  EXPECT_NEAR(d["mean"].get<double>(), -0.2, 1e-12);
  EXPECT_NEAR(d["ci95_half"].get<double>(), 0.0, 1e-12);  // the same difference on every seed
  EXPECT_EQ(d["n_seeds"].get<int>(), 3);
  EXPECT_NEAR(j["summary"]["sft"]["harmful: held-out wrappers"]["mean"].get<double>(), 0.7, 1e-12);
  const std::string md = report_markdown(in);
  EXPECT_NE(md.find("| harmful: held-out wrappers | 70.0 ± 24.8 | 50.0 ± 24.8 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| harmful: held-out wrappers | -20.0 ± 0.0 | 3 |"), std::string::npos) << md;
  const std::string svg = comparison_svg(in);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_NE(attention_svg({{"sft", {0.2, 0.3}, {0.5, 0.4}}}).find("polyline"), std::string::npos);
}
