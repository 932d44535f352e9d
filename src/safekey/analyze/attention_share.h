// The paper's attention analysis (SPEC.md section 6; PAPER.md section 6): while K is produced, how
// much attention mass do K's tokens put on the understanding U and on the query X? Teacher-forced on
// records with U/K offsets: for every layer, attention probabilities averaged over heads; for each K
// token, the mass on U's tokens and on the query's tokens (all of [0, query_len): template, user
// turn(s) and the generation prefix); averaged over K tokens, then over examples. The reference's
// analysis script used the last layer only; we report every layer.
#pragma once
#include <cstdint>
#include <vector>

#include "safekey/data/example.h"
#include "safekey/model/decoder.h"
#include "safekey/util/json.h"

namespace safekey::analyze {

struct AttentionShares {
  std::vector<double> share_u;  // [layers] mean mass of K tokens on U
  std::vector<double> share_x;  // [layers] mean mass of K tokens on the query X
  int64_t examples = 0;         // examples used (those with non-empty U and K)
  int64_t skipped = 0;          // examples without U or K
  json to_json() const;
};

AttentionShares attention_shares(model::DecoderModel& model,
                                 const std::vector<data::TokenizedExample>& examples);

}  // namespace safekey::analyze
