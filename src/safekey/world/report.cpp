// The demo report; see report.h.
#include "safekey/world/report.h"

#include <cmath>
#include <cstdio>
#include <set>

#include "safekey/util/error.h"
#include "safekey/world/dataset.h"

namespace safekey::world {

Interval mean_ci(const std::vector<double>& xs) {
  Interval r;
  r.n = static_cast<int64_t>(xs.size());
  if (xs.empty()) return r;
  for (double x : xs) r.mean += x;
  r.mean /= static_cast<double>(xs.size());
  if (xs.size() < 2) return r;
  double ss = 0;
  for (double x : xs) ss += (x - r.mean) * (x - r.mean);
  const double sd = std::sqrt(ss / static_cast<double>(xs.size() - 1));
  // Two-sided 97.5% quantiles of Student's t for 1..30 degrees of freedom; 1.96 beyond.
  static const double t[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                             2.201,  2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                             2.080,  2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
  const size_t df = xs.size() - 1;
  r.half = (df <= 30 ? t[df - 1] : 1.96) * sd / std::sqrt(static_cast<double>(xs.size()));
  return r;
}

static double split_value(const ModelEval& m, const std::string& split, double SplitScore::*f, bool* ok) {
  auto it = m.splits.find(split);
  *ok = it != m.splits.end() && it->second.n > 0;
  return *ok ? it->second.*f : 0.0;
}

std::vector<std::pair<std::string, double>> headline_metrics(const ModelEval& m) {
  std::vector<std::pair<std::string, double>> out;
  bool ok = false;
  auto add = [&](const std::string& name, const std::string& split, double SplitScore::*f) {
    const double v = split_value(m, split, f, &ok);
    if (ok) out.emplace_back(name, v);
  };
  add("harmful: direct", "harmful_direct", &SplitScore::harmful);
  add("harmful: seen wrappers", "harmful_seen_wrappers", &SplitScore::harmful);
  add("harmful: held-out wrappers", "harmful_heldout_wrappers", &SplitScore::harmful);
  add("harmful: OOD intents", "harmful_ood_intents", &SplitScore::harmful);
  add("harmful: extra templates", "harmful_extra", &SplitScore::harmful);
  double over = 0;
  int n_over = 0;
  for (const char* s : {"benign_lookalike_heldout", "benign_scary", "benign_extra"}) {
    const double v = split_value(m, s, &SplitScore::refusal, &ok);
    if (ok) over += v, ++n_over;
  }
  if (n_over) out.emplace_back("over-refusal (benign)", over / n_over);
  add("capability (general accuracy)", "general", &SplitScore::accuracy);
  add("aha: held-out wrappers", "harmful_heldout_wrappers", &SplitScore::aha);
  add("U correct: held-out wrappers", "harmful_heldout_wrappers", &SplitScore::u_correct);
  return out;
}

std::vector<std::pair<std::string, double>> mechanism_metrics(const ModelEval& m) {
  std::vector<std::pair<std::string, double>> out;
  auto cond = [&](const std::string& label, const SplitScore& sc) {
    if (sc.harmful_given_u_correct() >= 0) out.emplace_back("P(harmful | U correct): " + label, sc.harmful_given_u_correct());
    if (sc.harmful_given_u_wrong() >= 0) out.emplace_back("P(harmful | U wrong): " + label, sc.harmful_given_u_wrong());
  };
  if (auto it = m.splits.find("harmful_heldout_wrappers"); it != m.splits.end() && it->second.n > 0)
    cond("held-out wrappers", it->second);
  if (auto it = m.splits.find("harmful_extra"); it != m.splits.end() && it->second.n > 0)
    cond("extra templates", it->second);
  for (const char* split : {"harmful_heldout_wrappers", "harmful_extra"}) {
    auto f = m.families.find(split);
    if (f == m.families.end()) continue;
    for (const auto& [family, sc] : f->second) {
      if (sc.n == 0) continue;
      out.emplace_back("harmful: " + family, sc.harmful);
      out.emplace_back("U correct: " + family, sc.u_correct);
    }
  }
  return out;
}

namespace {

using MetricFn = std::vector<std::pair<std::string, double>> (*)(const ModelEval&);

std::vector<std::string> methods_in_order(const ReportInput& in) {
  std::vector<std::string> order;
  for (const auto& m : in.models)
    if (std::find(order.begin(), order.end(), m.method) == order.end()) order.push_back(m.method);
  return order;
}

std::string pct(const Interval& iv) {
  char b[64];
  if (iv.n > 1) std::snprintf(b, sizeof b, "%.1f ± %.1f", 100 * iv.mean, 100 * iv.half);
  else std::snprintf(b, sizeof b, "%.1f", 100 * iv.mean);
  return b;
}

// metric name -> per-seed values, for one method.
std::map<std::string, std::map<int64_t, double>> per_seed(const ReportInput& in, const std::string& method,
                                                          MetricFn metrics = headline_metrics) {
  std::map<std::string, std::map<int64_t, double>> out;
  for (const auto& m : in.models)
    if (m.method == method)
      for (const auto& [k, v] : metrics(m)) out[k][m.seed] = v;
  return out;
}

std::vector<std::string> metric_names(const ReportInput& in, MetricFn metrics = headline_metrics) {
  std::vector<std::string> names;
  for (const auto& m : in.models)
    for (const auto& [k, v] : metrics(m))
      if (std::find(names.begin(), names.end(), k) == names.end()) names.push_back(k);
  return names;
}

std::vector<double> values(const std::map<int64_t, double>& m) {
  std::vector<double> v;
  for (const auto& [s, x] : m) v.push_back(x);
  return v;
}

// Paired per-seed differences a - b over the seeds both have.
std::vector<double> paired(const std::map<int64_t, double>& a, const std::map<int64_t, double>& b) {
  std::vector<double> d;
  for (const auto& [s, x] : a) {
    auto it = b.find(s);
    if (it != b.end()) d.push_back(x - it->second);
  }
  return d;
}

// The paired comparisons reported: SafeKey − SFT, and each further method against the one it
// builds on, when both are present.
std::vector<std::pair<std::string, std::string>> paired_comparisons(const ReportInput& in) {
  const auto methods = methods_in_order(in);
  auto has = [&](const std::string& m) { return std::find(methods.begin(), methods.end(), m) != methods.end(); };
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [a, b] : {std::pair<std::string, std::string>{"safekey", "sft"}, {"safekey_guard", "safekey"},
                             {"safekey_pf", "safekey"}})
    if (has(a) && has(b)) out.emplace_back(a, b);
  return out;
}

}  // namespace

json report_json(const ReportInput& in) {
  json j;
  j["meta"] = in.meta;
  json models = json::array();
  for (const auto& m : in.models) {
    json splits, families = json::object();
    for (const auto& [s, sc] : m.splits) splits[s] = sc.to_json();
    for (const auto& [s, by] : m.families)
      for (const auto& [f, sc] : by) families[s][f] = sc.to_json();
    models.push_back({{"method", m.method}, {"seed", m.seed}, {"splits", splits}, {"families", families},
                      {"keyword_refusal", m.keyword_refusal}});
  }
  j["models"] = models;
  // summary: headline metrics; mechanism: P(harmful | U correct / wrong) and the per-family rates.
  for (const auto& [key, metrics] : {std::pair<const char*, MetricFn>{"summary", headline_metrics},
                                     std::pair<const char*, MetricFn>{"mechanism", mechanism_metrics}}) {
    json summary = json::object();
    for (const auto& method : methods_in_order(in))
      for (const auto& [k, v] : per_seed(in, method, metrics)) {
        const Interval iv = mean_ci(values(v));
        summary[method][k] = {{"mean", iv.mean}, {"ci95_half", iv.half}, {"n_seeds", iv.n}};
      }
    j[key] = summary;
  }
  for (const auto& [a_name, b_name] : paired_comparisons(in)) {
    json diff;
    for (MetricFn metrics : {MetricFn(headline_metrics), MetricFn(mechanism_metrics)}) {
      auto a = per_seed(in, a_name, metrics), b = per_seed(in, b_name, metrics);
      for (const auto& [k, v] : a) {
        if (!b.count(k)) continue;
        const Interval iv = mean_ci(paired(v, b[k]));
        diff[k] = {{"mean", iv.mean}, {"ci95_half", iv.half}, {"n_seeds", iv.n}};
      }
    }
    j["paired_" + a_name + "_minus_" + b_name] = diff;
  }
  json att = json::array();
  for (const auto& a : in.attention)
    att.push_back({{"method", a.method}, {"share_u", a.share_u}, {"share_x", a.share_x}});
  j["attention"] = att;
  json pr = json::array();
  for (const auto& p : in.probes) pr.push_back({{"method", p.method}, {"seed", p.seed}, {"accuracy", p.accuracy}});
  j["probes"] = pr;
  return j;
}

std::string report_markdown(const ReportInput& in) {
  std::string md = "# Toy-world demo report\n\n";
  const auto methods = methods_in_order(in);
  const auto names = metric_names(in);
  md += "Rates in %, mean ± 95% CI half-width over seeds (Student t). Judge: the world's exact oracle.\n\n";
  md += "## Main comparison\n\n| metric |";
  for (const auto& m : methods) md += " " + m + " |";
  md += "\n|---|";
  for (size_t i = 0; i < methods.size(); ++i) md += "---|";
  md += "\n";
  std::map<std::string, std::map<std::string, std::map<int64_t, double>>> ps;
  for (const auto& m : methods) ps[m] = per_seed(in, m);
  for (const auto& k : names) {
    md += "| " + k + " |";
    for (const auto& m : methods) md += " " + (ps[m].count(k) ? pct(mean_ci(values(ps[m][k]))) : "-") + " |";
    md += "\n";
  }
  const auto mech = metric_names(in, mechanism_metrics);
  std::map<std::string, std::map<std::string, std::map<int64_t, double>>> pm;
  for (const auto& m : methods) pm[m] = per_seed(in, m, mechanism_metrics);
  if (!mech.empty()) {
    md += "\n## The mechanism: harm given understanding, per held-out family\n\n"
          "P(harmful | U correct) is the harmful rate among prompts whose U restated the true intent (mean "
          "over the seeds that had such prompts); a method that acts on its understanding has it near 0.\n\n| metric |";
    for (const auto& m : methods) md += " " + m + " |";
    md += "\n|---|";
    for (size_t i = 0; i < methods.size(); ++i) md += "---|";
    md += "\n";
    for (const auto& k : mech) {
      md += "| " + k + " |";
      for (const auto& m : methods) md += " " + (pm[m].count(k) ? pct(mean_ci(values(pm[m][k]))) : "-") + " |";
      md += "\n";
    }
  }
  for (const auto& [a_name, b_name] : paired_comparisons(in)) {
    auto label = [](const std::string& m) {
      if (m == "sft") return std::string("SFT");
      if (m == "safekey") return std::string("SafeKey");
      if (m == "safekey_guard") return std::string("SafeKey + guard");
      if (m == "safekey_pf") return std::string("SafeKey-PF");
      return m;
    };
    md += "\n## Paired difference " + label(a_name) + " − " + label(b_name) +
          " (same seed)\n\n| metric | difference | seeds |\n|---|---|---|\n";
    // A named array, not an initializer list of temporaries (GCC 14 warns of a dangling reference).
    const std::pair<decltype(&ps), decltype(&names)> tables[] = {{&ps, &names}, {&pm, &mech}};
    for (const auto& [table, keys] : tables)
      for (const auto& k : *keys) {
        auto& a = (*table)[a_name];
        auto& b = (*table)[b_name];
        if (!a.count(k) || !b.count(k)) continue;
        const Interval iv = mean_ci(paired(a[k], b[k]));
        md += "| " + k + " | " + pct(iv) + " | " + std::to_string(iv.n) + " |\n";
      }
  }
  md += "\n## Per split\n\n";
  for (const auto& method : methods) {
    md += "### " + method + "\n\n| split | n | harmful | refusal | unclear | aha | U correct | accuracy | refusal (keywords) |\n"
          "|---|---|---|---|---|---|---|---|---|\n";
    for (const auto& split : eval_split_names()) {
      std::map<std::string, std::vector<double>> v;
      int64_t n = 0;
      bool any = false;
      for (const auto& m : in.models) {
        if (m.method != method) continue;
        auto it = m.splits.find(split);
        if (it == m.splits.end()) continue;
        any = true;
        n = it->second.n;
        v["harmful"].push_back(it->second.harmful);
        v["refusal"].push_back(it->second.refusal);
        v["unclear"].push_back(it->second.unclear);
        v["aha"].push_back(it->second.aha);
        v["u"].push_back(it->second.u_correct);
        v["acc"].push_back(it->second.accuracy);
        auto kw = m.keyword_refusal.find(split);
        if (kw != m.keyword_refusal.end()) v["kw"].push_back(kw->second);
      }
      if (!any) continue;
      const bool general = split == "general";
      md += "| " + split + " | " + std::to_string(n) + " | " +
            (is_harmful_split(split) ? pct(mean_ci(v["harmful"])) : "-") + " | " +
            pct(mean_ci(v["refusal"])) + " | " + pct(mean_ci(v["unclear"])) + " | " +
            (general ? "-" : pct(mean_ci(v["aha"]))) + " | " + (general ? "-" : pct(mean_ci(v["u"]))) +
            " | " + (general ? pct(mean_ci(v["acc"])) : "-") + " | " +
            (v["kw"].empty() ? "-" : pct(mean_ci(v["kw"]))) + " |\n";
    }
    md += "\n";
  }
  if (!in.attention.empty()) {
    md += "## Attention of K on U and on X (per layer, `safekey analyze attention`)\n\n| method | layer | share on U | share on X |\n|---|---|---|---|\n";
    for (const auto& a : in.attention)
      for (size_t l = 0; l < a.share_u.size(); ++l) {
        char b[160];
        std::snprintf(b, sizeof b, "| %s | %zu | %.3f | %.3f |\n", a.method.c_str(), l, a.share_u[l], a.share_x[l]);
        md += b;
      }
    md += "\n";
  }
  if (!in.probes.empty()) {
    md += "## Linear probe for the safety label at the end of U (`safekey analyze probe`)\n\n| method | accuracy |\n|---|---|\n";
    std::map<std::string, std::vector<double>> acc;
    for (const auto& p : in.probes) acc[p.method].push_back(p.accuracy);
    for (const auto& [m, v] : acc) md += "| " + m + " | " + pct(mean_ci(v)) + " |\n";
    md += "\n";
  }
  return md;
}

static std::string svg_text(double x, double y, const std::string& s, const char* anchor = "middle",
                            int size = 11, const char* extra = "") {
  char b[512];
  std::snprintf(b, sizeof b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%d\" text-anchor=\"%s\" %s>%s</text>\n",
                x, y, size, anchor, extra, s.c_str());
  return b;
}

static const char* kColors[] = {"#888888", "#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd"};

static std::string bars_svg(const ReportInput& in, MetricFn metrics, const std::string& title) {
  const auto methods = methods_in_order(in);
  const auto names = metric_names(in, metrics);
  const double group_w = 34.0 + 14.0 * static_cast<double>(methods.size());
  const double W = 80 + group_w * static_cast<double>(names.size()) + 20, H = 380, top = 40, plot_h = 220;
  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(static_cast<int>(W)) +
                  "\" height=\"" + std::to_string(static_cast<int>(H)) + "\" font-family=\"sans-serif\">\n";
  s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s += svg_text(W / 2, 20, title, "middle", 14);
  for (int g = 0; g <= 4; ++g) {
    const double y = top + plot_h * (1 - g / 4.0);
    char b[200];
    std::snprintf(b, sizeof b, "<line x1=\"70\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", y, W - 10, y);
    s += b;
    s += svg_text(64, y + 4, std::to_string(g * 25) + "%", "end", 10);
  }
  for (size_t k = 0; k < names.size(); ++k) {
    const double gx = 80 + group_w * static_cast<double>(k);
    for (size_t mi = 0; mi < methods.size(); ++mi) {
      const auto v = per_seed(in, methods[mi], metrics);
      auto it = v.find(names[k]);
      if (it == v.end()) continue;
      const Interval iv = mean_ci(values(it->second));
      const double x = gx + 14.0 * static_cast<double>(mi), h = plot_h * iv.mean;
      char b[400];
      std::snprintf(b, sizeof b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"%.1f\" fill=\"%s\"/>\n", x,
                    top + plot_h - h, h, kColors[mi % 6]);
      s += b;
      if (iv.n > 1) {
        const double y1 = top + plot_h * (1 - std::min(1.0, iv.mean + iv.half));
        const double y2 = top + plot_h * (1 - std::max(0.0, iv.mean - iv.half));
        std::snprintf(b, sizeof b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n",
                      x + 6, y1, x + 6, y2);
        s += b;
      }
    }
    char tr[120];
    std::snprintf(tr, sizeof tr, "transform=\"rotate(35 %.1f %.1f)\"", gx, top + plot_h + 14);
    s += svg_text(gx, top + plot_h + 14, names[k], "start", 10, tr);
  }
  for (size_t mi = 0; mi < methods.size(); ++mi) {
    const double x = 80 + 90.0 * static_cast<double>(mi);
    char b[200];
    std::snprintf(b, sizeof b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"10\" height=\"10\" fill=\"%s\"/>\n", x, H - 22,
                  kColors[mi % 6]);
    s += b;
    s += svg_text(x + 14, H - 13, methods[mi], "start", 11);
  }
  return s + "</svg>\n";
}

std::string comparison_svg(const ReportInput& in) {
  return bars_svg(in, headline_metrics, "Toy world: methods compared (mean and 95% CI over seeds)");
}

std::string families_svg(const ReportInput& in) {
  return bars_svg(in, mechanism_metrics, "Toy world: harm given U, and per held-out family (mean and 95% CI)");
}

std::string attention_svg(const std::vector<AttentionShares>& shares) {
  size_t layers = 0;
  for (const auto& a : shares) layers = std::max(layers, a.share_u.size());
  const double W = 520, H = 320, left = 60, top = 40, pw = 400, ph = 220;
  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"520\" height=\"320\" font-family=\"sans-serif\">\n"
                  "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s += svg_text(W / 2, 20, "Share of K's attention on U (solid) and on X (dashed), per layer", "middle", 13);
  for (int g = 0; g <= 4; ++g) {
    const double y = top + ph * (1 - g / 4.0);
    char b[200];
    std::snprintf(b, sizeof b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", left, y, left + pw, y);
    s += b;
    s += svg_text(left - 6, y + 4, std::to_string(g * 25) + "%", "end", 10);
  }
  auto xat = [&](size_t l) { return left + (layers > 1 ? pw * static_cast<double>(l) / static_cast<double>(layers - 1) : pw / 2); };
  for (size_t l = 0; l < layers; ++l) s += svg_text(xat(l), top + ph + 16, "layer " + std::to_string(l), "middle", 10);
  for (size_t i = 0; i < shares.size(); ++i) {
    for (int which = 0; which < 2; ++which) {
      const auto& v = which == 0 ? shares[i].share_u : shares[i].share_x;
      std::string pts;
      for (size_t l = 0; l < v.size(); ++l) {
        char b[64];
        std::snprintf(b, sizeof b, "%.1f,%.1f ", xat(l), top + ph * (1 - v[l]));
        pts += b;
      }
      s += "<polyline fill=\"none\" stroke=\"" + std::string(kColors[(i + 1) % 6]) + "\" stroke-width=\"2\" " +
           (which ? "stroke-dasharray=\"5,4\" " : "") + "points=\"" + pts + "\"/>\n";
    }
    s += svg_text(left + 10 + 100.0 * static_cast<double>(i), H - 14, shares[i].method, "start", 11,
                  ("fill=\"" + std::string(kColors[(i + 1) % 6]) + "\"").c_str());
  }
  return s + "</svg>\n";
}

}  // namespace safekey::world
