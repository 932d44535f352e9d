#include "safekey/eval/suite.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "safekey/util/file.h"

namespace safekey::eval {

namespace {
const std::vector<std::string> kSafety = {
    "strongreject",        "jbb",       "wildchat", "wildjailbreak",
    "advbench_prefilling", "multiturn", "xstest"};
const std::vector<std::string> kReasoning = {"math500", "aime2024", "gpqa", "humaneval",
                                             "mmlu_pro"};

std::string fmt(double v) {
  if (std::isnan(v)) return "n/a";
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", v);
  return b;
}
std::string xml_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<')
      o += "&lt;";
    else if (c == '>')
      o += "&gt;";
    else if (c == '&')
      o += "&amp;";
    else if (c == '"')
      o += "&quot;";
    else
      o += c;
  }
  return o;
}

struct Group {
  const char* title;
  bool (*has)(BenchKind);
};
const Group kGroups[] = {
    {"Harmfulness rate, % (lower is better)", [](BenchKind k) { return k == BenchKind::kHarmful; }},
    {"Over-refusal: refusal rate, % (lower is better)",
     [](BenchKind k) { return k == BenchKind::kOverRefusal; }},
    {"General ability: accuracy / pass@1, % (higher is better)",
     [](BenchKind k) { return bench_kind_is_graded(k); }},
};
}  // namespace

std::vector<std::string> suite_names() { return {"paper", "safety", "reasoning"}; }

std::vector<std::string> suite_benchmarks(const std::string& suite) {
  if (suite == "safety") return kSafety;
  if (suite == "reasoning") return kReasoning;
  if (suite == "paper") {
    std::vector<std::string> all = kSafety;
    all.insert(all.end(), kReasoning.begin(), kReasoning.end());
    return all;
  }
  fail("--suite: unknown suite '", suite, "' (expected paper, safety or reasoning)");
}

std::string benchmark_file(const std::string& name, const LoadOptions& opts) {
  auto it = opts.files.find(name);
  return it != opts.files.end() ? it->second : path_join(opts.data_dir, builtin_default_file(name));
}

std::string suite_markdown(const SuiteTable& t, const json& meta) {
  std::string md = "# Evaluation suite: " + t.suite + "\n\n";
  for (auto it = meta.begin(); it != meta.end(); ++it)
    md += cat("- ", it.key(), ": ", it->is_string() ? it->get<std::string>() : it->dump(), "\n");
  for (const auto& g : kGroups) {
    std::vector<size_t> rows;
    for (size_t r = 0; r < t.benches.size(); ++r)
      if (g.has(t.kinds[r])) rows.push_back(r);
    if (rows.empty()) continue;
    md += cat("\n## ", g.title, "\n\n| benchmark |");
    for (const auto& v : t.variants) md += " " + v + " |";
    md += "\n|---|";
    for (size_t v = 0; v < t.variants.size(); ++v) md += "---:|";
    md += "\n";
    std::vector<double> sum(t.variants.size(), 0);
    std::vector<int> n(t.variants.size(), 0);
    for (size_t r : rows) {
      md += "| " + t.benches[r] + " |";
      for (size_t v = 0; v < t.variants.size(); ++v) {
        const SuiteCell& c = t.cells[r][v];
        md += " " + (c.present ? fmt(c.report.value) : std::string("—")) + " |";
        if (c.present && !std::isnan(c.report.value)) sum[v] += c.report.value, ++n[v];
      }
      md += "\n";
    }
    if (rows.size() > 1) {
      md += "| **average** |";
      for (size_t v = 0; v < t.variants.size(); ++v)
        md += " " + (n[v] ? fmt(sum[v] / n[v]) : "n/a") + " |";
      md += "\n";
    }
  }
  if (!t.skipped.empty()) {
    md += "\nSkipped (no data file):\n\n";
    for (const auto& [b, why] : t.skipped) md += "- " + b + ": " + why + "\n";
  }
  md +=
      "\n— = no results for that variant. Per-benchmark counts, judges and rules: each variant's "
      "report.md.\n\n![suite](suite.svg)\n";
  return md;
}

SuiteTable compare_reports(const std::vector<std::pair<std::string, std::vector<BenchReport>>>& columns) {
  SuiteTable t;
  t.suite = "report";
  std::vector<std::string> seen;
  std::map<std::string, std::pair<BenchKind, std::string>> kind_of;  // bench -> kind, column
  for (const auto& [name, rows] : columns) {
    SK_CHECK(std::find(t.variants.begin(), t.variants.end(), name) == t.variants.end(),
             "report: two columns are named '", name, "' (name them NAME=DIR)");
    t.variants.push_back(name);
    for (const auto& r : rows) {
      const auto it = kind_of.find(r.bench);
      if (it == kind_of.end()) {
        kind_of[r.bench] = {r.kind, name};
        seen.push_back(r.bench);
      } else {
        SK_CHECK(it->second.first == r.kind, "report: benchmark '", r.bench, "' is '", bench_kind_name(r.kind),
                 "' in ", name, " but '", bench_kind_name(it->second.first), "' in ", it->second.second);
      }
    }
  }
  for (const auto& b : suite_benchmarks("paper"))
    if (kind_of.count(b)) t.benches.push_back(b);
  for (const auto& b : seen)
    if (std::find(t.benches.begin(), t.benches.end(), b) == t.benches.end()) t.benches.push_back(b);
  for (const auto& b : t.benches) t.kinds.push_back(kind_of.at(b).first);
  t.cells.assign(t.benches.size(), std::vector<SuiteCell>(columns.size()));
  for (size_t v = 0; v < columns.size(); ++v)
    for (const auto& r : columns[v].second) {
      const size_t row = static_cast<size_t>(std::find(t.benches.begin(), t.benches.end(), r.bench) - t.benches.begin());
      SK_CHECK(!t.cells[row][v].present, "report: benchmark '", r.bench, "' appears twice in ", columns[v].first);
      t.cells[row][v] = {true, r};
    }
  return t;
}

json suite_json(const SuiteTable& t, const json& meta) {
  json rows = json::array();
  for (size_t r = 0; r < t.benches.size(); ++r) {
    json vals = json::object();
    for (size_t v = 0; v < t.variants.size(); ++v) {
      const SuiteCell& c = t.cells[r][v];
      vals[t.variants[v]] = c.present ? c.report.to_json() : json(nullptr);
    }
    rows.push_back(
        {{"bench", t.benches[r]}, {"kind", bench_kind_name(t.kinds[r])}, {"variants", vals}});
  }
  json skipped = json::array();
  for (const auto& [b, why] : t.skipped) skipped.push_back({{"bench", b}, {"reason", why}});
  return {{"suite", t.suite},
          {"meta", meta},
          {"variants", t.variants},
          {"rows", rows},
          {"skipped", skipped}};
}

std::string suite_bar_chart_svg(const SuiteTable& t) {
  static const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};
  const int label_w = 210, bar_w = 420, bar_h = 14, gap = 12,
            top = 40 + 18 * static_cast<int>(t.variants.size());
  const int group_h = bar_h * static_cast<int>(std::max<size_t>(1, t.variants.size())) + gap;
  const int height = top + group_h * static_cast<int>(t.benches.size()) + 40,
            width = label_w + bar_w + 80;
  std::string s =
      cat("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"", width, "\" height=\"", height,
          "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" "
          "fill=\"white\"/>\n<text x=\"10\" y=\"22\" font-size=\"15\" font-weight=\"bold\">",
          xml_escape("Suite " + t.suite + " (percent)"), "</text>\n");
  for (size_t v = 0; v < t.variants.size(); ++v)
    s += cat("<rect x=\"10\" y=\"", 32 + 18 * v, "\" width=\"12\" height=\"12\" fill=\"",
             colors[v % 6], "\"/><text x=\"28\" y=\"", 43 + 18 * v, "\">",
             xml_escape(t.variants[v]), "</text>\n");
  for (int p = 0; p <= 100; p += 25) {
    int x = label_w + bar_w * p / 100;
    s += cat("<line x1=\"", x, "\" y1=\"", top - 4, "\" x2=\"", x, "\" y2=\"", height - 30,
             "\" stroke=\"#ddd\"/><text x=\"", x, "\" y=\"", height - 14,
             "\" text-anchor=\"middle\" fill=\"#555\">", p, "%</text>\n");
  }
  for (size_t r = 0; r < t.benches.size(); ++r) {
    int y0 = top + group_h * static_cast<int>(r);
    const char* what = t.kinds[r] == BenchKind::kHarmful       ? "harmful"
                       : t.kinds[r] == BenchKind::kOverRefusal ? "refusal"
                       : t.kinds[r] == BenchKind::kCode        ? "pass@1"
                                                               : "accuracy";
    s += cat("<text x=\"", label_w - 8, "\" y=\"", y0 + group_h / 2, "\" text-anchor=\"end\">",
             xml_escape(t.benches[r] + " (" + what + ")"), "</text>\n");
    for (size_t v = 0; v < t.variants.size(); ++v) {
      const SuiteCell& c = t.cells[r][v];
      double val = c.present && !std::isnan(c.report.value) ? c.report.value : 0;
      int w = static_cast<int>(std::lround(bar_w * val / 100.0)),
          y = y0 + bar_h * static_cast<int>(v);
      s += cat("<rect x=\"", label_w, "\" y=\"", y, "\" width=\"", w, "\" height=\"", bar_h - 2,
               "\" fill=\"", colors[v % 6], "\"/><text x=\"", label_w + w + 4, "\" y=\"",
               y + bar_h - 4, "\" font-size=\"10\">", c.present ? fmt(c.report.value) : "—",
               "</text>\n");
    }
  }
  return s + "</svg>\n";
}

void write_suite(const std::string& dir, const SuiteTable& t, const json& meta) {
  make_dirs(dir);
  write_file_atomic(path_join(dir, "suite.md"), suite_markdown(t, meta));
  write_file_atomic(path_join(dir, "suite.json"),
                    suite_json(t, meta).dump(2, ' ', false, json::error_handler_t::replace) + "\n");
  write_file_atomic(path_join(dir, "suite.svg"), suite_bar_chart_svg(t));
}

}  // namespace safekey::eval
