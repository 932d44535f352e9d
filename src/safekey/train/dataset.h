// Training data for the trainer: tokenized SafeKey examples (data::TokenizedExample) from
//   * reference records (JSON array / JSONL / chat JSONL, data/records.h) rendered with the model's
//     chat template and tokenizer (data/spans.h), or
//   * pre-tokenized JSONL, one example per line (docs/training.md):
//       {"input_ids": [...], "query_len": q, "k_begin": kb, "k_end": ke, "unsafe": 0|1,
//        "labels"?: [...], "u_begin"?: q, "u_end"?: kb, "id"?: ...}
//     labels default to -100 on [0, query_len) and input_ids elsewhere; U defaults to [query_len, k_begin).
// and the truncation policy to --max-seq-len (truncate_example).
#pragma once
#include <string>
#include <vector>

#include "safekey/data/example.h"

namespace safekey::train {

struct Dataset {
  std::vector<data::TokenizedExample> examples;
  int64_t skipped = 0;     // invalid records skipped (skip_invalid)
  std::string format;      // "pretokenized" or "records"
};

// True when the first record of `path` has an "input_ids" field.
bool is_pretokenized_file(const std::string& path);

// Reads pre-tokenized JSONL; every problem names file:line:field. vocab_size > 0 checks the ids.
Dataset load_pretokenized(const std::string& path, int64_t vocab_size);

struct TruncationResult {
  bool changed = false;
  bool k_cut = false;  // K lost tokens (default policy keeps the query, U and as much of K as fits)
};

// Truncates one example to max_len tokens.
// Default policy: keep the FIRST max_len tokens (the response tail goes; query, U and K stay intact
// because they come first). A query of max_len tokens or more is an error naming the record.
// reference_compat: keep the LAST max_len tokens like train/sft.py; labels, the K mask and the query
// mask shift with the tokens but the U span (c_span) keeps its untruncated coordinates, and the
// query may be cut — the reference's behaviour, reproduced on purpose.
TruncationResult truncate_example(data::TokenizedExample& ex, int64_t max_len, bool reference_compat);

// Loads reference / chat records (data/records.h), renders each with the model folder's chat template
// and tokenizer and maps U and K to tokens (data/spans.h, which also truncates to max_seq_len:
// first tokens kept; with reference_compat the reference's left truncation). Errors: a model folder
// without tokenizer.json or chat template, invalid records (all listed; skip_invalid skips them and
// lists them in skipped_list_path).
Dataset load_record_examples(const std::string& path, const std::string& model_dir,
                             const std::vector<std::string>& benign_sources, bool skip_invalid,
                             const std::string& skipped_list_path, int64_t max_seq_len, bool reference_compat);

// Checks spans and ids of one example (message names ex.source and the field).
void validate_example(const data::TokenizedExample& ex, int64_t vocab_size);

}  // namespace safekey::train
