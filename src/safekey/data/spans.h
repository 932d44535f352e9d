// Span mapping (SPEC.md section 3): one SafeKey record -> input_ids, labels, query_len and the U and
// K token spans, computed FROM CHARACTER OFFSETS of the rendered text (not by counting tokens of U
// and K separately, as the reference does).
//
//   input  = template([user q, assistant response], keep_thinking, add_generation_prompt=false)
//   query  = template([user q], add_generation_prompt=true)
// with `response` normalised as the reference does (normalize_response, data/response.h). Both are encoded
// without added special tokens. Then:
//   * the rendered query must be a prefix of the rendered input, and its tokens a prefix of the
//     input's tokens (else Error); query_len = number of query tokens; labels = -100 there.
//   * the response is located in the rendered input; U = response[:summary_end_idx] and
//     K = response[summary_end_idx:next_sentence_end_idx] become character ranges of the input
//     (code points, Python str indices, like the tokenizer's offsets).
//   * token i belongs to K when its characters overlap K's characters; the K span is
//     [first such token, last such token + 1). U is [query_len, k_begin): the tokens after the
//     query and before K. A token straddling the U|K boundary therefore counts as K (K's decoded
//     text then starts with the end of U); one straddling K's end counts as K too. Characters of U
//     that the query already covers (R1-Distill's generation prompt ends with "<think>\n") are not
//     in the U span.
// Truncation to max_seq_len (docs/chat_template.md): when the sequence is longer, the first
// max_seq_len tokens are kept if they contain the query, U and K (only the end of the answer is
// dropped); otherwise, with allow_query_truncation, the LAST max_seq_len tokens are kept (the
// reference's policy; the query is cut from the left and query_len / spans shift) if they still
// contain all of U and K; otherwise it is an Error naming the record.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "safekey/data/example.h"
#include "safekey/data/response.h"
#include "safekey/text/chat_template.h"
#include "safekey/text/tokenizer.h"

namespace safekey::data {

struct Record;

struct SpanInput {
  std::string question;
  std::string response;  // raw or already normalised (normalising twice changes nothing)
  // Offsets into the normalised response, in code points (Python str indices) ...
  int64_t summary_end_idx = -1, next_sentence_end_idx = -1;
  // ... or, when the code-point ones are -1, in UTF-8 bytes (must fall on character boundaries).
  int64_t summary_end_byte = -1, next_sentence_end_byte = -1;
  int unsafe = 1;
  // A prefilling attack's text: the response's thinking starts with it, and it joins the query
  // (query = generation prompt + prefill: no loss, part of X; U starts after it).
  std::string prefill;
  std::string origin = "record";  // names the record in errors ("file.json:17")
  int64_t record_index = -1;
};

struct SpanOptions {
  bool keep_thinking = true;            // render with the reference's keep-thinking template edit
  int64_t max_seq_len = 0;              // 0 = no limit
  bool allow_query_truncation = false;  // allow the reference's left truncation into the query
};

// What the mapping saw, for tests and debugging (character offsets are code points of `input_text`).
struct SpanDetail {
  std::string input_text, query_text, response;  // rendered input, rendered query, normalised response
  int64_t query_chars = 0;                       // code points of query_text
  int64_t response_char_begin = 0;               // where the response starts in input_text
  int64_t u_char_begin = 0, k_char_begin = 0, k_char_end = 0;
  std::vector<std::pair<size_t, size_t>> token_offsets;  // per input token (before truncation)
  int64_t truncated_left = 0, truncated_right = 0;       // tokens dropped by max_seq_len
};

TokenizedExample build_example(const text::Tokenizer& tokenizer, const text::ChatFormat& format, const SpanInput& in,
                               const SpanOptions& options = {}, SpanDetail* detail = nullptr);
// From a validated data::Record (response already normalised, offsets in code points).
TokenizedExample build_example(const text::Tokenizer& tokenizer, const text::ChatFormat& format, const Record& r,
                               const SpanOptions& options = {}, SpanDetail* detail = nullptr);

}  // namespace safekey::data
