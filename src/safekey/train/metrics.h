// Training visibility: one record per optimizer step (metrics.jsonl), the progress line, and the
// loss-curve picture (an SVG with one panel per loss term) written at the end of a run.
#pragma once
#include <string>
#include <vector>

#include "safekey/util/json.h"

namespace safekey::train {

struct StepMetrics {
  int64_t step = 0, total_steps = 0;  // optimizer steps (1-based after the step)
  int64_t epoch = 0, epochs = 0;      // 0-based epoch
  bool objectives_on = false;         // SafeKey objectives active in this epoch
  double loss = 0, sft_loss = 0, k_loss = 0, head_loss = 0, L_head_C = 0, L_head_ctx = 0;
  double token_acc = 0, k_acc = 0;    // SFT token accuracy, K accuracy under the query mask
  double lr = 0, grad_norm = 0;
  int64_t tokens = 0;                 // non-padding tokens in the step
  int64_t qmm_skipped_rows = 0, head_skipped_rows = 0;
  double step_s = 0, tokens_per_s = 0, elapsed_s = 0, eta_s = 0;
  double comm_s = 0;                  // seconds rank 0 spent in collectives during the step
  std::vector<std::string> record_ids;  // provenance of the rows (not written to metrics.jsonl)

  json to_json() const;
  static StepMetrics from_json(const json& j);
  std::string progress_line() const;
};

// Appends one JSON line and flushes it to disk.
void append_metrics_line(const std::string& path, const StepMetrics& m);
// Keeps only the lines with step <= max_step (used when resuming after a kill).
void truncate_metrics(const std::string& path, int64_t max_step);
std::vector<StepMetrics> read_metrics(const std::string& path);

// One panel per term (loss, sft_loss, k_loss, head_loss) against the optimizer step.
std::string loss_curves_svg(const std::vector<StepMetrics>& steps, const std::string& title);

}  // namespace safekey::train
