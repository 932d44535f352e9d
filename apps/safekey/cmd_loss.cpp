// `safekey loss`: one SafeKey step (forward + backward, no update) on one explicit tokenized batch,
// printed as one JSON object. BATCH.json is the `inputs` object of a golden safekey_losses.json.
// External conformance checks run it with other batches: keep the interface and keys stable.
#include <iostream>

#include "cli.h"
#include "model_setup.h"
#include "safekey/model/decoder.h"
#include "safekey/train/batch.h"
#include "safekey/train/optim.h"
#include "safekey/train/step.h"
#include "safekey/util/error.h"
#include "safekey/util/json.h"

namespace safekey {
namespace {

int run_loss(cli::Args& args) {
  const std::string model_dir = args.required("model");
  const std::string head_path = args.required("head");
  const std::string batch_path = args.required("batch");
  const torch::Device device = compute_device(args);
  auto model = model::load_model(model_dir, torch::kFloat32, device);
  model->train();
  model->set_gradient_checkpointing(args.on("gradient-checkpointing"));
  train::SafetyHead head(model->config().hidden_size);
  train::load_safety_head(head, head_path);
  head->to(device);
  json in = read_json_file(batch_path);
  if (in.contains("inputs") && !in.contains("input_ids")) in = in["inputs"];  // a whole golden file
  train::Batch batch = train::batch_from_reference_json(in, batch_path);
  for (int64_t b = 0; b < batch.batch_size(); ++b) {
    auto mx = batch.input_ids[b].max().item<int64_t>();
    auto mn = batch.input_ids[b].min().item<int64_t>();
    SK_CHECK(mn >= 0 && mx < model->config().vocab_size, batch_path, ": row ", b,
             ": field 'input_ids' holds token ", mn < 0 ? mn : mx, " outside the vocabulary [0, ",
             model->config().vocab_size, ")");
  }

  train::StepOptions o;
  o.qmm = true;
  o.head = true;
  o.head_detach = args.on("detach-safety-head");
  o.key_weight = args.f64("key-sentence-weight");
  o.head_weight = args.f64("head-weight");
  o.head_theta = args.f64("head-theta");
  const std::string pass = args.str("qmm-pass");
  SK_CHECK(pass == "truncated" || pass == "full", "--qmm-pass: expected truncated or full, got '", pass, "'");
  o.qmm_pass = args.on("key-sentence-prediction-mask-ablation") ? train::QmmPass::NoMask
               : pass == "full"                                 ? train::QmmPass::FullMasked
                                                                : train::QmmPass::Truncated;
  auto r = train::safekey_step(model, &head, batch, o);

  std::vector<torch::Tensor> model_params, head_params;
  torch::Tensor embed_grad;
  for (auto& [name, p] : model->hf_named_parameters()) {
    model_params.push_back(p);
    if (name == "model.embed_tokens.weight") embed_grad = p.grad();
  }
  for (auto& p : head->parameters()) head_params.push_back(p);
  json out = json::object();
  out["sft_loss"] = r.sft_loss;
  out["k_loss"] = r.k_loss;
  out["L_head_C"] = r.L_head_C;
  out["L_head_ctx"] = r.L_head_ctx;
  out["head_loss"] = r.head_loss;
  out["total_loss"] = r.total_loss;
  out["logit_C"] = r.logit_C;
  out["logit_ctx"] = r.logit_ctx;
  out["num_sft_target_tokens"] = r.sft_tokens;
  out["num_k_target_tokens"] = r.k_tokens;
  out["qmm_skipped_rows"] = r.qmm_skipped_rows;
  out["head_skipped_rows"] = r.head_skipped_rows;
  out["grad_norm_model_params"] = train::clip_grad_norm(model_params, 0);
  out["grad_norm_safety_head"] = train::clip_grad_norm(head_params, 0);
  std::vector<double> sums;
  if (embed_grad.defined()) {
    auto s = embed_grad.sum(1).to(torch::kCPU, torch::kFloat64).contiguous();  // [V]
    sums.assign(s.data_ptr<double>(), s.data_ptr<double>() + s.numel());
  }
  out["embed_tokens_grad_sum_over_hidden"] = sums;
  std::cout << out.dump() << "\n";
  return r.finite ? 0 : 1;
}

cli::Registrar reg({"loss", "evaluate the SafeKey loss terms and gradients on one tokenized batch",
                    "safekey loss --model DIR --head HEAD.safetensors --batch BATCH.json\n"
                    "BATCH.json: {input_ids, labels, k_mask, attn_mask, c_span, unsafe} (the `inputs` of a\n"
                    "golden safekey_losses.json; the query of each row is where attn_mask is 0).\n"
                    "Prints one JSON object: sft_loss, k_loss, L_head_C, L_head_ctx, head_loss, total_loss,\n"
                    "logit_C, logit_ctx, grad_norm_model_params, grad_norm_safety_head,\n"
                    "embed_tokens_grad_sum_over_hidden, ...",
                    run_loss});

}  // namespace
}  // namespace safekey
