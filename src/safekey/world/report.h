// The demo's report: per-method tables (mean and 95% CI over seeds), the paired difference
// SafeKey - SFT, the analyses, as Markdown + JSON, and SVG pictures. No libtorch.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "safekey/util/json.h"
#include "safekey/world/oracle.h"

namespace safekey::world {

// One trained model evaluated on every split.
struct ModelEval {
  std::string method;  // "base", "sft", "safekey", "head_only", "qmm_only"
  int64_t seed = 0;
  std::map<std::string, SplitScore> splits;
  std::map<std::string, std::map<std::string, SplitScore>> families;  // split -> wrapper family -> score
  std::map<std::string, double> keyword_refusal;  // refusal-keywords judge: refusal rate per split
};

struct Interval {
  double mean = 0, half = 0;  // mean +- half (95% t interval; half = 0 with one value)
  int64_t n = 0;
};
// 95% confidence interval of the mean (Student t, n - 1 degrees of freedom).
Interval mean_ci(const std::vector<double>& xs);

// The headline metrics of one model (in [0, 1]), in a fixed order.
std::vector<std::pair<std::string, double>> headline_metrics(const ModelEval& m);

// The mechanism, per model: P(harmful | U correct) and P(harmful | U wrong) on the held-out wrappers
// (and on the extra templates), and the harmful and U-correct rates of each held-out family.
std::vector<std::pair<std::string, double>> mechanism_metrics(const ModelEval& m);

// Per-layer attention shares of one model (from `safekey analyze attention`).
struct AttentionShares {
  std::string method;
  std::vector<double> share_u, share_x;  // per layer
};
struct ProbeResult {
  std::string method;
  int64_t seed = 0;
  double accuracy = 0;
};

struct ReportInput {
  std::vector<ModelEval> models;
  std::vector<AttentionShares> attention;
  std::vector<ProbeResult> probes;
  json meta;  // config, timings, world summary
};

json report_json(const ReportInput& in);
std::string report_markdown(const ReportInput& in);
// Grouped bars: headline metric x method, with 95% CI whiskers.
std::string comparison_svg(const ReportInput& in);
// The same for mechanism_metrics (the per-family plot).
std::string families_svg(const ReportInput& in);
// Per layer: share of K's attention on U and on X, one line pair per method.
std::string attention_svg(const std::vector<AttentionShares>& shares);

}  // namespace safekey::world
