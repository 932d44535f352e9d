// Attention mass of K on U and on X; see attention_share.h.
#include "safekey/analyze/attention_share.h"

#include "safekey/util/error.h"

namespace safekey::analyze {

json AttentionShares::to_json() const {
  return {{"share_u", share_u}, {"share_x", share_x}, {"examples", examples}, {"skipped", skipped}};
}

AttentionShares attention_shares(model::DecoderModel& model,
                                 const std::vector<data::TokenizedExample>& examples) {
  torch::NoGradGuard no_grad;
  model->eval();
  const auto device = model->parameters().front().device();
  AttentionShares r;
  std::vector<double> su, sx;
  for (const auto& ex : examples) {
    if (ex.u_end <= ex.u_begin || ex.k_end <= ex.k_begin || ex.query_len <= 0) {
      ++r.skipped;
      continue;
    }
    const int64_t T = ex.k_end;  // nothing after K matters for K's attention
    std::vector<int64_t> ids(ex.input_ids.begin(), ex.input_ids.begin() + T);
    model::ForwardInput in;
    in.input_ids = torch::tensor(ids, torch::kLong).view({1, T}).to(device);  // [1, T]
    in.compute_logits = false;
    in.output_attentions = true;
    const model::ForwardOutput out = model->forward(in);
    SK_CHECK(!out.attentions.empty(), "analyze attention: the model returned no attention probabilities");
    if (su.empty()) su.assign(out.attentions.size(), 0.0), sx.assign(out.attentions.size(), 0.0);
    for (size_t l = 0; l < out.attentions.size(); ++l) {
      torch::Tensor p = out.attentions[l][0].to(torch::kFloat).mean(0);           // [T, T] over heads
      torch::Tensor rows = p.slice(0, ex.k_begin, ex.k_end);                      // [K, T]
      su[l] += rows.slice(1, ex.u_begin, ex.u_end).sum(1).mean().item<double>();  // mass on U
      sx[l] += rows.slice(1, 0, ex.query_len).sum(1).mean().item<double>();       // mass on X
    }
    ++r.examples;
  }
  SK_CHECK(r.examples > 0, "analyze attention: no example has both a U and a K span (", r.skipped,
           " skipped)");
  for (size_t l = 0; l < su.size(); ++l) {
    r.share_u.push_back(su[l] / static_cast<double>(r.examples));
    r.share_x.push_back(sx[l] / static_cast<double>(r.examples));
  }
  return r;
}

}  // namespace safekey::analyze
