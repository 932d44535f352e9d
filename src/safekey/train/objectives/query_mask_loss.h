// Query-Mask Modeling (SPEC.md §4 step 3 and "Exact equivalence that makes QMM cheap").
//
// L_qmm = mean cross-entropy of the key-sentence tokens K when every query token is hidden as a key
// for every position: logits at positions k_begin-1 .. k_end-2 predict tokens k_begin .. k_end-1,
// averaged over the K tokens of the whole batch (the reference's Σ token_loss·k_mask / Σ k_mask).
//
// The reference runs a second full-length forward with a key mask over the query. Positions in U and
// K never see query keys, and nothing after k_end enters the loss, so the same loss comes from running
// the model ONLY on the visible tokens before k_end — [query_len, k_end) — with their original
// position ids. That is Pass::Truncated, the default: its cost is |U|+|K| tokens instead of the
// whole sequence. Pass::FullMasked is the reference's pass (kept for tests and benchmarks);
// Pass::NoMask is the "key_no_mask" ablation, whose logits equal the SFT pass's and are taken from it.
//
// A row whose first K token would be predicted from a hidden position (empty U) is skipped and
// counted, never NaN; so is a row without K.
#pragma once
#include <torch/torch.h>

#include "safekey/model/decoder.h"
#include "safekey/train/batch.h"
#include "safekey/train/objectives/sft_loss.h"

namespace safekey::train {

enum class QmmPass { Truncated, FullMasked, NoMask };

struct QmmResult {
  TokenLoss k;               // loss (scalar), K tokens, K tokens predicted right
  int64_t skipped_rows = 0;  // rows without a usable K (empty U or no K)
  int64_t tokens_run = 0;    // tokens the extra forward processed (0 for NoMask)
};

// `sft_hidden` [B, T, H]: the SFT pass's final hidden states, used only by QmmPass::NoMask.
// loss_chunk_tokens > 0: chunked cross-entropy over the K targets (lm_head_cross_entropy).
QmmResult query_mask_loss(model::DecoderModel& model, const Batch& batch, QmmPass pass,
                          const torch::Tensor& sft_hidden = {}, int64_t loss_chunk_tokens = 0,
                          bool host_values = true, bool always_forward = false);
// always_forward (ZeRO-3): without a usable row, a one-token forward with a zero loss still runs.

}  // namespace safekey::train
