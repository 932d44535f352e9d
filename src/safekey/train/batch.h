// A SafeKey training batch as tensors plus the per-row spans the objectives need (SPEC.md §3-4).
//
// Rows are right-padded with the pad id (eos) to the longest row; padding has label -100 and is
// visible as a key (as in the reference collate). Every span is half-open, in token positions of
// the padded row.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "safekey/data/example.h"
#include "safekey/util/json.h"

namespace safekey::train {

struct RowSpans {
  int64_t length = 0;                // tokens before padding
  int64_t c_begin = 0, c_end = 0;    // U pooled by C_head; ctx_head pools [0, c_end)
  int64_t k_begin = 0, k_end = 0;    // key sentence K
  std::vector<uint8_t> query_mask;   // [T] 1 = visible key, 0 = query token hidden in QMM
};

struct Batch {
  torch::Tensor input_ids;  // [B, T] int64
  torch::Tensor labels;     // [B, T] int64, -100 = no SFT target
  torch::Tensor k_mask;     // [B, T] int64, 1 on K tokens
  torch::Tensor attn_mask;  // [B, T] int64, 0 on the query (hidden as keys in QMM), 1 elsewhere
  torch::Tensor unsafe;     // [B] float32 safety label
  std::vector<RowSpans> rows;
  std::vector<std::string> sources;  // record provenance per row ("file:line"), for messages
  int64_t batch_size() const { return input_ids.size(0); }
  int64_t seq_len() const { return input_ids.size(1); }
  // Non-padding tokens in the batch.
  int64_t num_tokens() const;
  // "data.json:3, data.json:9" (for error messages).
  std::string describe_rows() const;
};

// Right-pads tokenized examples into a batch. Spans come from the examples (c = [u_begin, u_end),
// K = [k_begin, k_end), query = [0, query_len)).
Batch collate(const std::vector<const data::TokenizedExample*>& rows, int64_t pad_id);

// Reads the reference's tensor batch: the object under `inputs` of a golden safekey_losses.json
// ({input_ids, labels, k_mask, attn_mask, c_span, unsafe}). k_mask and c_span are taken as given
// (they carry the reference's k_start formula); the query of each row is where attn_mask is 0.
// Errors name `where` and the field.
Batch batch_from_reference_json(const json& inputs, const std::string& where);

}  // namespace safekey::train
