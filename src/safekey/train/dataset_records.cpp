// Records -> tokenized examples: data::load_records (validation, labels) + data::build_example
// (chat template, tokenizer, spans from character offsets, truncation).
#include "safekey/data/records.h"
#include "safekey/data/spans.h"
#include "safekey/text/chat_template.h"
#include "safekey/text/tokenizer.h"
#include "safekey/train/dataset.h"
#include "safekey/util/error.h"
#include "safekey/util/file.h"

namespace safekey::train {

Dataset load_record_examples(const std::string& path, const std::string& model_dir,
                             const std::vector<std::string>& benign_sources, bool skip_invalid,
                             const std::string& skipped_list_path, int64_t max_seq_len, bool reference_compat) {
  SK_CHECK(path_exists(path_join(model_dir, "tokenizer.json")), "train: ", path,
           " holds text records, which need the model's tokenizer, but ", model_dir,
           " has no tokenizer.json (copy the tokenizer files into the model folder, or train on "
           "pre-tokenized JSONL, docs/training.md)");
  auto tokenizer = text::Tokenizer::from_file(model_dir);
  std::unique_ptr<text::ChatFormat> format;
  try {
    format = std::make_unique<text::ChatFormat>(text::ChatFormat::from_path(model_dir));
  } catch (const Error& e) {
    fail("train: ", model_dir, " has no usable chat template (tokenizer_config.json 'chat_template' or "
         "chat_template.jinja), needed to render ", path, ": ", e.what());
  }
  data::LoadOptions lo;
  lo.benign_sources = benign_sources;
  lo.require_spans = true;
  lo.skip_invalid = skip_invalid;
  lo.invalid_list_path = skip_invalid ? skipped_list_path : "";
  auto loaded = data::load_records(path, lo);
  Dataset ds;
  ds.format = "records";
  ds.skipped = loaded.skipped;
  data::SpanOptions so;
  so.keep_thinking = true;
  so.max_seq_len = max_seq_len;
  so.allow_query_truncation = reference_compat;
  for (const auto& r : loaded.records) ds.examples.push_back(data::build_example(tokenizer, *format, r, so));
  SK_CHECK(!ds.examples.empty(), path, ": no valid records");
  return ds;
}

}  // namespace safekey::train
