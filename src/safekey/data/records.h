// Training records (SPEC.md section 2): loading, normalisation and validation.
//
// Three input layouts, told apart per file (docs/data.md has the full field reference):
//   * a JSON array of reference records (the SafeKey / STAR-1 `.json` files);
//   * JSONL (one JSON object per line) of the same reference records;
//   * JSONL chat-style records: {"messages": [{"role": "user", ...}, {"role": "assistant", ...}]}.
// A reference record: {question, response, source, category?, id?, unsafe?, summary_end_idx,
// next_sentence_end_idx}. A chat record takes question/response from the user/assistant turns.
// Span offsets are CODE POINTS into the normalised response (summary_end_idx,
// next_sentence_end_idx) or, alternatively, UTF-8 BYTES into it (summary_end_byte,
// next_sentence_end_byte); U = response[:summary_end], K = response[summary_end:next_sentence_end].
//
// Every record is validated before anything uses it, and every problem of every record is collected
// (file:line:field). Strict by default: any problem -> one Error listing all of them. With
// skip_invalid the bad records are skipped, counted and (optionally) listed in a JSON file.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "safekey/util/json.h"

namespace safekey::data {

struct Record {
  std::string question;
  std::string response;  // normalised: "<think>\n" + thinking + "\n</think>\n\n" + answer (UTF-8)
  std::string source;    // "" when the file has none
  std::vector<std::string> category;  // a string in the file becomes a one-element list
  int unsafe = 1;                     // 1 harmful request, 0 benign
  std::string id;                     // string or integer id in the file, "" when absent
  // A prefilling attack's start of the reply: the response's thinking starts with it, and it belongs
  // to the prompt (no loss on it; U starts after it). "" = none.
  std::string prefill;
  // Spans. Code points (Python str indices) and the matching byte offsets into `response`.
  bool has_spans = false;
  int64_t summary_end_idx = -1, next_sentence_end_idx = -1;
  int64_t summary_end_byte = -1, next_sentence_end_byte = -1;
  // Where it came from.
  std::string origin;      // "file:line" (line where the record starts)
  int64_t index = -1;      // 0-based index of the record in its file
  bool chat_style = false; // read from {"messages": [...]}
  ordered_json raw;        // the record exactly as read (annotate re-emits every field)

  std::string_view understanding() const;  // U = response[:summary_end]  (needs has_spans)
  std::string_view key_sentence() const;   // K = response[summary_end:next_sentence_end]
};

struct Problem {
  std::string file;
  int64_t line = 0;     // 1-based line of the record (of the bad byte for JSON syntax errors)
  int64_t column = 0;   // only for JSON syntax errors
  int64_t index = -1;   // record index in the file (-1: not a record)
  std::string field;    // "summary_end_idx", "messages[1].content", "" for the whole record
  std::string message;
  // "file:line:field: message (record N)"
  std::string to_string() const;
};

struct LoadOptions {
  // Sources whose requests are benign (unsafe = 0); any other source is harmful (unsafe = 1).
  // An explicit `unsafe` field in a record wins over its source.
  std::vector<std::string> benign_sources = {"4o_rewrite"};
  // Training needs spans; annotation loads records without them (spans present are still checked).
  bool require_spans = true;
  // Skip invalid records (counted, listed) instead of failing on the first file with problems.
  bool skip_invalid = false;
  // With skip_invalid: where to write the JSON list of skipped records ("" = nowhere).
  std::string invalid_list_path;
};

struct LoadResult {
  std::vector<Record> records;     // valid records, in file order
  int64_t total = 0;               // records read (valid + skipped)
  int64_t skipped = 0;             // invalid records skipped (skip_invalid only)
  std::vector<Problem> problems;   // every problem of the skipped records
};

// Loads and validates `path` (format by content: a file whose first non-blank character is '['
// is a JSON array, anything else JSONL). Throws Error for an unreadable file, a JSON array that
// does not parse (with line:column), an empty file, or - unless skip_invalid - any problem
// (one message listing all of them).
LoadResult load_records(const std::string& path, const LoadOptions& options = {});

// Checks one record object; appends its problems and, when there are none, fills `out`.
// `where` gives file, line and index for the problems. Exposed for tests and other readers.
void parse_record(const ordered_json& obj, const Problem& where, const LoadOptions& options,
                  Record& out, std::vector<Problem>& problems);

// The JSON written for skipped records: {"file", "skipped", "records": [{origin, index, id,
// problems: [{line, field, message}]}]}.
json skipped_list_json(const std::string& path, const std::vector<Problem>& problems, int64_t skipped);

}  // namespace safekey::data
