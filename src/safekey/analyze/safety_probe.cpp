// Linear probe for the safety label at the end of U; see safety_probe.h.
#include "safekey/analyze/safety_probe.h"

#include <algorithm>

#include "safekey/util/error.h"
#include "safekey/util/rng.h"

namespace safekey::analyze {

json ProbeResult::to_json() const {
  return {{"train_accuracy", train_accuracy}, {"test_accuracy", test_accuracy},
          {"majority_baseline", majority_baseline}, {"train", train}, {"test", test}, {"skipped", skipped}};
}

torch::Tensor end_of_u_features(model::DecoderModel& model,
                                const std::vector<data::TokenizedExample>& examples,
                                std::vector<int>* labels, int64_t* skipped) {
  torch::NoGradGuard no_grad;
  model->eval();
  const auto device = model->parameters().front().device();
  std::vector<torch::Tensor> rows;
  labels->clear();
  *skipped = 0;
  for (const auto& ex : examples) {
    if (ex.u_end <= ex.u_begin) {
      ++*skipped;
      continue;
    }
    const int64_t T = ex.u_end;
    std::vector<int64_t> ids(ex.input_ids.begin(), ex.input_ids.begin() + T);
    model::ForwardInput in;
    in.input_ids = torch::tensor(ids, torch::kLong).view({1, T}).to(device);  // [1, T]
    in.compute_logits = false;
    rows.push_back(model->forward(in).hidden[0][T - 1].to(torch::kFloat).cpu());  // [H]
    labels->push_back(ex.unsafe);
  }
  SK_CHECK(!rows.empty(), "analyze probe: no example has a U span");
  return torch::stack(rows);  // [N, H]
}

ProbeResult linear_probe(const torch::Tensor& features, const std::vector<int>& labels, const ProbeOptions& opt) {
  SK_CHECK(features.dim() == 2 && features.size(0) == static_cast<int64_t>(labels.size()),
           "analyze probe: ", features.size(0), " feature rows but ", labels.size(), " labels");
  // Stratified deterministic split.
  std::vector<int64_t> train_idx, test_idx;
  for (int cls : {0, 1}) {
    std::vector<int64_t> idx;
    for (size_t i = 0; i < labels.size(); ++i)
      if (labels[i] == cls) idx.push_back(static_cast<int64_t>(i));
    Rng rng(opt.seed + static_cast<uint64_t>(cls));
    rng.shuffle(idx);
    const auto n_test = static_cast<size_t>(std::round(opt.test_fraction * static_cast<double>(idx.size())));
    test_idx.insert(test_idx.end(), idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(n_test));
    train_idx.insert(train_idx.end(), idx.begin() + static_cast<std::ptrdiff_t>(n_test), idx.end());
  }
  SK_CHECK(!train_idx.empty() && !test_idx.empty(), "analyze probe: too few examples for a train/test split (",
           labels.size(), ")");
  auto take = [&](const std::vector<int64_t>& idx) { return features.index_select(0, torch::tensor(idx, torch::kLong)); };
  auto take_y = [&](const std::vector<int64_t>& idx) {
    std::vector<float> y;
    for (int64_t i : idx) y.push_back(static_cast<float>(labels[static_cast<size_t>(i)]));
    return torch::tensor(y);
  };
  torch::Tensor xtr = take(train_idx), xte = take(test_idx);  // [Ntr, H], [Nte, H]
  const torch::Tensor ytr = take_y(train_idx), yte = take_y(test_idx);
  const torch::Tensor mu = xtr.mean(0), sd = xtr.std(0, /*unbiased=*/false).clamp_min(1e-6);
  xtr = (xtr - mu) / sd;
  xte = (xte - mu) / sd;
  torch::Tensor w = torch::zeros({features.size(1)}), b = torch::zeros({});
  const double n = static_cast<double>(xtr.size(0));
  for (int64_t s = 0; s < opt.steps; ++s) {  // full-batch gradient descent on the logistic loss
    torch::Tensor p = torch::sigmoid(xtr.matmul(w) + b);  // [Ntr]
    torch::Tensor g = p - ytr;
    w -= opt.lr * (xtr.t().matmul(g) / n + opt.l2 * w);
    b -= opt.lr * g.mean();
  }
  auto acc = [&](const torch::Tensor& x, const torch::Tensor& y) {
    return ((x.matmul(w) + b).gt(0).to(torch::kFloat) == y).to(torch::kFloat).mean().item<double>();
  };
  ProbeResult r;
  r.train_accuracy = acc(xtr, ytr);
  r.test_accuracy = acc(xte, yte);
  const double pos = yte.mean().item<double>();
  r.majority_baseline = std::max(pos, 1 - pos);
  r.train = static_cast<int64_t>(train_idx.size());
  r.test = static_cast<int64_t>(test_idx.size());
  return r;
}

}  // namespace safekey::analyze
