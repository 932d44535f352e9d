// `safekey annotate` as a component: read records, add span offsets where missing, check the
// result, write the records back in the input's layout plus a report with statistics.
#pragma once
#include <string>

#include "safekey/data/annotate.h"
#include "safekey/util/json.h"

namespace safekey::data {

struct AnnotateFileOptions {
  LoadOptions load;              // require_spans is forced off; skip_invalid applies to both steps
  bool overwrite = false;        // re-annotate records that already have offsets
  std::string report_path;       // "" = no report file
};

// Annotates `in` into `out` (a JSON array unless `out` ends in ".jsonl"). Every output record is
// the input object with every field kept, plus summary_end_idx, next_sentence_end_idx (code
// points into the normalised response) and "annotation": {method, rule, flags, u_sentences}.
// Records that already have offsets are copied unchanged (unless overwrite). Every written record
// is re-validated. Returns the report: {input, output, method, records, annotated, kept, skipped,
// rules, flags, flagged, u_sentences, u_chars, k_chars, skipped_records, per_record}.
json annotate_file(const std::string& in, const std::string& out, SpanAnnotator& annotator,
                   const AnnotateFileOptions& options);

// Human-readable statistics from the report (several lines).
std::string annotate_summary_text(const json& report);

}  // namespace safekey::data
