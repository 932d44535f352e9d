#include "safekey/train/step.h"

#include <cmath>

#include "safekey/util/error.h"

namespace safekey::train {

namespace {

std::vector<float> to_floats(const torch::Tensor& t) {
  auto c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

// The step's loss terms and counts on the host: one copy for all of them (r.terms).
void read_terms(StepResult& r) {
  auto t = r.terms.cpu();
  const double* v = t.data_ptr<double>();
  r.total_loss = v[0];
  r.sft_loss = v[1];
  r.k_loss = v[2];
  r.head_loss = v[3];
  r.L_head_C = v[4];
  r.L_head_ctx = v[5];
  r.sft_correct = static_cast<int64_t>(v[6]);
  r.k_correct = static_cast<int64_t>(v[7]);
  r.finite = std::isfinite(r.total_loss) && std::isfinite(r.sft_loss) && std::isfinite(r.k_loss) &&
             std::isfinite(r.head_loss);
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
                                   o.loss_chunk_tokens, o.host_values);
  r.sft_tokens = sft.count;
  torch::Tensor total = sft.loss;
  const auto zero = torch::zeros({}, sft.loss.options().dtype(torch::kFloat32));
  torch::Tensor k_loss = zero, k_correct = zero, head_loss = zero, head_C = zero, head_ctx = zero;

  // 2. Query-Mask Modeling.
  if (o.qmm) {
    auto q = query_mask_loss(model, batch, o.qmm_pass, hidden, o.loss_chunk_tokens, o.host_values, o.uniform_passes);
    k_loss = q.k.loss;
    k_correct = q.k.correct_count;
    r.k_tokens = q.k.count;
    r.qmm_skipped_rows = q.skipped_rows;
    r.qmm_tokens_run = q.tokens_run;
    total = total + o.key_weight * q.k.loss;
  }

  // 3. Dual-Path Safety Head.
  if (o.head) {
    no_model_grad.reset();  // the head's own parameters always get gradients
    auto h = o.head_detach ? hidden.detach() : hidden;
    auto hl = dual_path_safety_head(*head, h, batch, o.head_theta);
    head_loss = hl.loss;
    head_C = hl.L_C;
    head_ctx = hl.L_ctx;
    r.head_skipped_rows = hl.skipped_rows;
    if (o.host_values) {
      r.logit_C = to_floats(hl.logit_C);
      r.logit_ctx = to_floats(hl.logit_ctx);
    }
    total = o.head_detach ? o.head_weight * hl.loss : total + o.head_weight * hl.loss;
  }
  if (o.uniform_passes && hidden.requires_grad()) total = total + 0.0 * hidden.sum();  // backward reaches every layer
  {
    torch::NoGradGuard ng;
    auto f64 = [&](const torch::Tensor& t) { return t.detach().to(sft.loss.device(), torch::kFloat64).reshape({}); };
    r.terms = torch::stack({f64(total), f64(sft.loss), f64(k_loss), f64(head_loss), f64(head_C), f64(head_ctx),
                            f64(sft.correct_count), f64(k_correct)});
  }
  if (o.host_values) read_terms(r);
  if (o.backward && r.finite && total.requires_grad()) (total * o.loss_scale).backward();
  return r;
}

}  // namespace safekey::train
