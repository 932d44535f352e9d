#include "safekey/train/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "safekey/util/error.h"
#include "safekey/util/file.h"

namespace safekey::train {

json StepMetrics::to_json() const {
  return json{{"step", step},
              {"total_steps", total_steps},
              {"epoch", epoch},
              {"objectives_on", objectives_on},
              {"loss", loss},
              {"sft_loss", sft_loss},
              {"k_loss", k_loss},
              {"head_loss", head_loss},
              {"L_head_C", L_head_C},
              {"L_head_ctx", L_head_ctx},
              {"token_acc", token_acc},
              {"k_acc", k_acc},
              {"lr", lr},
              {"grad_norm", grad_norm},
              {"tokens", tokens},
              {"qmm_skipped_rows", qmm_skipped_rows},
              {"head_skipped_rows", head_skipped_rows},
              {"step_s", step_s},
              {"tokens_per_s", tokens_per_s},
              {"comm_s", comm_s},
              {"elapsed_s", elapsed_s}};
}

StepMetrics StepMetrics::from_json(const json& j) {
  StepMetrics m;
  m.step = j.value("step", int64_t{0});
  m.total_steps = j.value("total_steps", int64_t{0});
  m.epoch = j.value("epoch", int64_t{0});
  m.objectives_on = j.value("objectives_on", false);
  m.loss = j.value("loss", 0.0);
  m.sft_loss = j.value("sft_loss", 0.0);
  m.k_loss = j.value("k_loss", 0.0);
  m.head_loss = j.value("head_loss", 0.0);
  m.L_head_C = j.value("L_head_C", 0.0);
  m.L_head_ctx = j.value("L_head_ctx", 0.0);
  m.token_acc = j.value("token_acc", 0.0);
  m.k_acc = j.value("k_acc", 0.0);
  m.lr = j.value("lr", 0.0);
  m.grad_norm = j.value("grad_norm", 0.0);
  m.tokens = j.value("tokens", int64_t{0});
  m.step_s = j.value("step_s", 0.0);
  m.tokens_per_s = j.value("tokens_per_s", 0.0);
  m.comm_s = j.value("comm_s", 0.0);
  m.elapsed_s = j.value("elapsed_s", 0.0);
  return m;
}

namespace {

std::string hms(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  long t = static_cast<long>(s + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  return buf;
}

}  // namespace

std::string StepMetrics::progress_line() const {
  char buf[512];
  int n = std::snprintf(buf, sizeof buf, "epoch %lld/%lld step %lld/%lld loss %.4f sft %.4f",
                        static_cast<long long>(epoch + 1), static_cast<long long>(epochs),
                        static_cast<long long>(step), static_cast<long long>(total_steps), loss, sft_loss);
  std::string s(buf, static_cast<size_t>(n));
  if (objectives_on) {
    std::snprintf(buf, sizeof buf, " qmm %.4f head %.4f (C %.4f ctx %.4f)", k_loss, head_loss, L_head_C, L_head_ctx);
    s += buf;
  }
  std::snprintf(buf, sizeof buf, " acc %.3f", token_acc);
  s += buf;
  if (objectives_on) {
    std::snprintf(buf, sizeof buf, " k_acc %.3f", k_acc);
    s += buf;
  }
  std::snprintf(buf, sizeof buf, " lr %.3g gnorm %.3g tok/s %.0f ETA %s", lr, grad_norm, tokens_per_s,
                hms(eta_s).c_str());
  s += buf;
  if (qmm_skipped_rows) s += cat(" qmm_skipped_rows ", qmm_skipped_rows);
  return s;
}

void append_metrics_line(const std::string& path, const StepMetrics& m) {
  std::ofstream out(path, std::ios::app);
  SK_CHECK(out, path, ": cannot open for appending");
  out << m.to_json().dump() << "\n";
  out.flush();
  SK_CHECK(out, path, ": write failed");
}

std::vector<StepMetrics> read_metrics(const std::string& path) {
  std::vector<StepMetrics> out;
  if (!path_exists(path)) return out;
  std::istringstream in(read_file(path));
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    try {
      out.push_back(StepMetrics::from_json(json::parse(line)));
    } catch (const std::exception&) {
      break;  // a torn last line of a killed run
    }
  }
  return out;
}

void truncate_metrics(const std::string& path, int64_t max_step) {
  if (!path_exists(path)) return;
  std::istringstream in(read_file(path));
  std::string line, kept;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    try {
      if (json::parse(line).value("step", int64_t{0}) <= max_step) kept += line + "\n";
    } catch (const std::exception&) {
      break;
    }
  }
  write_file_atomic(path, kept);
}

std::string loss_curves_svg(const std::vector<StepMetrics>& steps, const std::string& title) {
  struct Series {
    const char* name;
    const char* color;
    double StepMetrics::*field;
  };
  const Series series[] = {{"loss (total)", "#1f77b4", &StepMetrics::loss},
                           {"sft_loss", "#2ca02c", &StepMetrics::sft_loss},
                           {"k_loss (QMM)", "#d62728", &StepMetrics::k_loss},
                           {"head_loss", "#9467bd", &StepMetrics::head_loss}};
  const int W = 720, panel_h = 180, margin_l = 70, margin_r = 20, top = 40;
  const int H = top + 4 * (panel_h + 30) + 20;
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << W / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" << title << "</text>\n";
  int64_t max_step = 1;
  for (const auto& m : steps) max_step = std::max(max_step, m.step);
  for (int s = 0; s < 4; ++s) {
    const int y0 = top + s * (panel_h + 30);
    // Points of this term: steps where it is defined (QMM / head only when their objectives ran).
    std::vector<std::pair<double, double>> pts;
    for (const auto& m : steps) {
      if ((s >= 2) && !m.objectives_on) continue;
      double v = m.*(series[s].field);
      if (std::isfinite(v)) pts.emplace_back(static_cast<double>(m.step), v);
    }
    svg << "<text x=\"" << margin_l << "\" y=\"" << y0 - 4 << "\" fill=\"" << series[s].color << "\">"
        << series[s].name << "</text>\n";
    svg << "<rect x=\"" << margin_l << "\" y=\"" << y0 << "\" width=\"" << W - margin_l - margin_r
        << "\" height=\"" << panel_h << "\" fill=\"none\" stroke=\"#888\"/>\n";
    if (pts.empty()) {
      svg << "<text x=\"" << W / 2 << "\" y=\"" << y0 + panel_h / 2 << "\" text-anchor=\"middle\" fill=\"#888\">"
          << "not active in this run</text>\n";
      continue;
    }
    double lo = pts[0].second, hi = pts[0].second;
    for (auto& p : pts) lo = std::min(lo, p.second), hi = std::max(hi, p.second);
    if (hi - lo < 1e-12) hi = lo + 1.0;
    auto X = [&](double step) { return margin_l + (W - margin_l - margin_r) * (step / static_cast<double>(max_step)); };
    auto Y = [&](double v) { return y0 + panel_h - panel_h * (v - lo) / (hi - lo); };
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.4g", hi);
    svg << "<text x=\"" << margin_l - 4 << "\" y=\"" << y0 + 10 << "\" text-anchor=\"end\">" << buf << "</text>\n";
    std::snprintf(buf, sizeof buf, "%.4g", lo);
    svg << "<text x=\"" << margin_l - 4 << "\" y=\"" << y0 + panel_h << "\" text-anchor=\"end\">" << buf << "</text>\n";
    svg << "<text x=\"" << W - margin_r << "\" y=\"" << y0 + panel_h + 14 << "\" text-anchor=\"end\">step "
        << max_step << "</text>\n";
    svg << "<polyline fill=\"none\" stroke=\"" << series[s].color << "\" stroke-width=\"1.5\" points=\"";
    for (auto& p : pts) {
      std::snprintf(buf, sizeof buf, "%.1f,%.1f ", X(p.first), Y(p.second));
      svg << buf;
    }
    svg << "\"/>\n";
  }
  svg << "</svg>\n";
  return svg.str();
}

}  // namespace safekey::train
