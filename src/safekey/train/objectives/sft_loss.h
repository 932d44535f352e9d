// The supervised fine-tuning loss of SafeKey (SPEC.md §4 step 1): causal next-token cross-entropy
// over every target with label != -100, averaged over the target tokens of the whole batch — the
// semantics of Hugging Face's ForCausalLMLoss with num_items_in_batch = None.
//
// Logits are only computed where they are needed: positions t with labels[t+1] != -100 are
// gathered from the final hidden states and only those go through the LM head.
#pragma once
#include <torch/torch.h>

#include "safekey/model/decoder.h"

namespace safekey::train {

// Positions whose logits an objective needs, gathered per row and right-padded.
struct TargetPositions {
  torch::Tensor positions;  // [B, P] int64 logit positions t (padding repeats 0)
  torch::Tensor targets;    // [B, P] int64 token predicted at t (= token t+1), -100 on padding
  int64_t count = 0;        // number of real targets
};

// Positions t with labels[b, t+1] != -100 and their targets labels[b, t+1].
TargetPositions sft_target_positions(const torch::Tensor& labels /* [B, T] */);

// Right-pads per-row position/target lists into a TargetPositions.
TargetPositions pack_target_positions(const std::vector<std::vector<int64_t>>& positions,
                                      const std::vector<std::vector<int64_t>>& targets);

// hidden [B, T, H] -> hidden at `positions` [B, P, H].
torch::Tensor gather_positions(const torch::Tensor& hidden, const torch::Tensor& positions);

struct TokenLoss {
  torch::Tensor loss;           // scalar: mean CE over real targets (0 when there are none)
  int64_t count = 0;            // real targets (counted on the host from the targets)
  torch::Tensor correct_count;  // int64 scalar on the loss's device: argmax == target
  int64_t correct = 0;          // the same on the host; filled only with host_values
};

// Mean cross-entropy of logits [B, P, V] against targets [B, P] (-100 ignored), computed in float32.
// host_values = false: no device-to-host copy (`correct` stays 0; read correct_count later).
TokenLoss token_cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets, bool host_values = true);

// The LM head and the mean cross-entropy at gathered hidden states [B, P, H] against targets [B, P]
// (-100 ignored). chunk_tokens > 0 and more targets than that: chunked cross-entropy: the LM head
// and the loss run over at most chunk_tokens target positions at a time, in forward and again in
// backward (recomputed), so the [positions x vocab] logits never exist at once. The loss and every
// gradient equal the one-pass computation up to float summation order (test_train_chunked_loss).
// Otherwise one pass: token_cross_entropy(model->lm_head_logits(hidden), targets).
TokenLoss lm_head_cross_entropy(model::DecoderModel& model, const torch::Tensor& hidden,
                                const torch::Tensor& targets, int64_t chunk_tokens, bool host_values = true);

}  // namespace safekey::train
