// One tokenized SafeKey training example (SPEC.md section 3), the hand-off between the text layer
// (template + tokenizer + span mapping) and the trainer. No libtorch.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace safekey::data {

struct TokenizedExample {
  std::vector<int64_t> input_ids;  // template([user q, assistant response]) tokens, no added specials
  std::vector<int64_t> labels;     // -100 on the query tokens [0, query_len), input_ids elsewhere
  int64_t query_len = 0;           // tokens of template([user q], add_generation_prompt=true)
  // Token spans, half-open, in input_ids coordinates (after any truncation):
  int64_t u_begin = 0, u_end = 0;  // understanding U after the query: [query_len, k_begin)
  int64_t k_begin = 0, k_end = 0;  // key sentence K
  int unsafe = 0;                  // safety label: 1 harmful request, 0 benign
  std::string source;              // record provenance ("file.json:17")
  int64_t record_index = -1;       // index of the record in its file
};

}  // namespace safekey::data
