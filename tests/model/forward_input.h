// Test helper: a ForwardInput from its leading fields (the others keep their defaults), without
// aggregate initialisation's missing-field warnings.
#pragma once
#include <utility>

#include "safekey/model/decoder.h"

namespace safekey::test {

inline model::ForwardInput fwd_in(torch::Tensor ids, torch::Tensor pos = {}, torch::Tensor key_mask = {},
                                  model::KVCache* cache = nullptr) {
  model::ForwardInput in;
  in.input_ids = std::move(ids);
  in.position_ids = std::move(pos);
  in.key_mask = std::move(key_mask);
  in.cache = cache;
  return in;
}

}  // namespace safekey::test
