// The paper's representation analysis as we implement it (PAPER.md section 6 leaves the method
// open): how well a LINEAR probe reads the safety label from the final hidden state (after the
// final norm) at the last token of U. Logistic regression on standardised features, trained on a
// deterministic split of the examples and scored on the held-out rest.
#pragma once
#include <cstdint>
#include <vector>

#include "safekey/data/example.h"
#include "safekey/model/decoder.h"
#include "safekey/util/json.h"

namespace safekey::analyze {

struct ProbeOptions {
  double test_fraction = 0.3;  // held-out share of the examples (stratified by label)
  int64_t steps = 300;         // full-batch gradient steps of the logistic regression
  double lr = 0.5;
  double l2 = 1e-3;
  uint64_t seed = 2002;        // the train/test split
};

struct ProbeResult {
  double train_accuracy = 0, test_accuracy = 0;
  double majority_baseline = 0;  // accuracy of always predicting the test set's majority label
  int64_t train = 0, test = 0, skipped = 0;
  json to_json() const;
};

// Features: [N, H] hidden states at the end of U, one row per example with a non-empty U.
torch::Tensor end_of_u_features(model::DecoderModel& model,
                                const std::vector<data::TokenizedExample>& examples,
                                std::vector<int>* labels, int64_t* skipped);
ProbeResult linear_probe(const torch::Tensor& features, const std::vector<int>& labels,
                         const ProbeOptions& opt);

}  // namespace safekey::analyze
