// One SafeKey training step on one micro-batch (SPEC.md §4):
//   L = L_sft + key_weight·L_qmm + head_weight·L_head
// with the SFT pass (objectives/sft_loss.h), Query-Mask Modeling (objectives/query_mask_loss.h) and
// the Dual-Path Safety Head (objectives/dual_path_safety_head.h). The reference's ablations:
// QmmPass::NoMask (K loss without the query mask) and head_detach (a probe on frozen features whose
// loss REPLACES everything: L = head_weight·L_head, as train/sft.py does).
#pragma once
#include <torch/torch.h>

#include <vector>

#include "safekey/model/decoder.h"
#include "safekey/train/batch.h"
#include "safekey/train/objectives/dual_path_safety_head.h"
#include "safekey/train/objectives/query_mask_loss.h"

namespace safekey::train {

struct StepOptions {
  bool qmm = false;            // Query-Mask Modeling on
  QmmPass qmm_pass = QmmPass::Truncated;
  bool head = false;           // Dual-Path Safety Head on
  bool head_detach = false;    // ablation: probe on detached features, loss replaced by the head loss
  double key_weight = 0.2;     // --key-sentence-weight
  double head_weight = 0.2;    // --head-weight
  double head_theta = 0.5;     // --head-theta: weight of C_head (U only)
  double loss_scale = 1.0;     // backward runs on loss_scale·L (1 / gradient accumulation steps)
  int64_t loss_chunk_tokens = 0;  // > 0: chunked cross-entropy (objectives/sft_loss.h)
  bool backward = true;
  // false: no device-to-host copy in the step (the trainer reads StepResult::terms once per
  // optimizer step); the double fields, logits and `finite` are then left unset.
  bool host_values = true;
  // ZeRO-3: every rank must run the same passes (their layers gather parameters collectively), so
  // the QMM forward runs even without a usable row and the backward always reaches every layer.
  bool uniform_passes = false;
};

struct StepResult {
  double total_loss = 0, sft_loss = 0, k_loss = 0, head_loss = 0, L_head_C = 0, L_head_ctx = 0;
  int64_t sft_tokens = 0, sft_correct = 0;  // token accuracy of the SFT pass
  int64_t k_tokens = 0, k_correct = 0;      // K accuracy under the query mask
  int64_t qmm_skipped_rows = 0, head_skipped_rows = 0;
  int64_t qmm_tokens_run = 0;               // tokens of the extra QMM forward
  int64_t tokens = 0;                       // non-padding tokens in the batch
  std::vector<float> logit_C, logit_ctx;
  bool finite = true;                       // every loss term is finite (with host_values)
  // float64 [8] on the device: total, sft, k, head, L_head_C, L_head_ctx losses, SFT correct, K correct.
  torch::Tensor terms;
};

// Runs the forward passes (and backward when options.backward), accumulating gradients into the
// model's and the head's .grad. `head` may be null when options.head is false.
StepResult safekey_step(model::DecoderModel& model, SafetyHead* head, const Batch& batch,
                        const StepOptions& options);

}  // namespace safekey::train
