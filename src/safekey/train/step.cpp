#include "safekey/train/step.h"

#include <cmath>

#include "safekey/util/error.h"

namespace safekey::train {

namespace {

std::vector<float> to_floats(const torch::Tensor& t) {
  auto c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

}  // namespace

StepResult safekey_step(model::DecoderModel& model, SafetyHead* head, const Batch& batch,
                        const StepOptions& o) {
  SK_CHECK(!o.head || head, "safekey_step: the safety head is on but no head was given");
  StepResult r;
  r.tokens = batch.num_tokens();
  const auto device = model->parameters().front().device();
  // With a detached head the loss is the head loss alone: the model needs no graph.
  std::unique_ptr<torch::NoGradGuard> no_model_grad;
  if (o.head && o.head_detach) no_model_grad = std::make_unique<torch::NoGradGuard>();

  // 1. SFT pass over the whole input: hidden [B, T, H]; logits only at target positions.
  model::ForwardInput in;
  in.input_ids = batch.input_ids.to(device);
  in.compute_logits = false;
  auto hidden = model->forward(in).hidden;  // [B, T, H]
  auto sft_pos = sft_target_positions(batch.labels);
  auto sft = lm_head_cross_entropy(model, gather_positions(hidden, sft_pos.positions), sft_pos.targets,
                                   o.loss_chunk_tokens);
  r.sft_loss = sft.loss.item<double>();
  r.sft_tokens = sft.count;
  r.sft_correct = sft.correct;
  torch::Tensor total = sft.loss;

  // 2. Query-Mask Modeling.
  if (o.qmm) {
    auto q = query_mask_loss(model, batch, o.qmm_pass, hidden, o.loss_chunk_tokens);
    r.k_loss = q.k.loss.item<double>();
    r.k_tokens = q.k.count;
    r.k_correct = q.k.correct;
    r.qmm_skipped_rows = q.skipped_rows;
    r.qmm_tokens_run = q.tokens_run;
    total = total + o.key_weight * q.k.loss;
  }

  // 3. Dual-Path Safety Head.
  if (o.head) {
    no_model_grad.reset();  // the head's own parameters always get gradients
    auto h = o.head_detach ? hidden.detach() : hidden;
    auto hl = dual_path_safety_head(*head, h, batch, o.head_theta);
    r.head_loss = hl.loss.item<double>();
    r.L_head_C = hl.L_C.item<double>();
    r.L_head_ctx = hl.L_ctx.item<double>();
    r.head_skipped_rows = hl.skipped_rows;
    r.logit_C = to_floats(hl.logit_C);
    r.logit_ctx = to_floats(hl.logit_ctx);
    total = o.head_detach ? o.head_weight * hl.loss : total + o.head_weight * hl.loss;
  }
  r.total_loss = total.item<double>();
  r.finite = std::isfinite(r.total_loss) && std::isfinite(r.sft_loss) && std::isfinite(r.k_loss) &&
             std::isfinite(r.head_loss);
  if (o.backward && r.finite && total.requires_grad()) (total * o.loss_scale).backward();
  return r;
}

}  // namespace safekey::train
