#include "safekey/data/spans.h"

#include <algorithm>

#include "safekey/data/records.h"
#include "safekey/util/error.h"

namespace safekey::data {
namespace {

std::vector<int64_t> widen(const std::vector<int32_t>& ids) { return std::vector<int64_t>(ids.begin(), ids.end()); }

}  // namespace

data::TokenizedExample build_example(const text::Tokenizer& tok, const text::ChatFormat& fmt, const SpanInput& in,
                                     const SpanOptions& opt, SpanDetail* detail) {
  const std::string& where = in.origin;
  SK_CHECK(data::utf8_valid(in.question), where, ": field 'question' is not valid UTF-8");
  SK_CHECK(data::utf8_valid(in.response), where, ": field 'response' is not valid UTF-8");
  data::NormalizedResponse norm = data::normalize_response_parts(in.response);
  SK_CHECK(norm.has_think, where, ": field 'response' has no <think>...</think> block");
  const std::string& response = norm.text;
  const int64_t resp_chars = int64_t(data::codepoint_count(response));

  // Offsets: code points, or bytes that must sit on character boundaries.
  int64_t s_end = in.summary_end_idx, k_end_off = in.next_sentence_end_idx;
  if (s_end < 0 && k_end_off < 0 && (in.summary_end_byte >= 0 || in.next_sentence_end_byte >= 0)) {
    const char* names[2] = {"summary_end_byte", "next_sentence_end_byte"};
    int64_t bytes[2] = {in.summary_end_byte, in.next_sentence_end_byte};
    int64_t cps[2];
    for (int k = 0; k < 2; ++k) {
      SK_CHECK(bytes[k] >= 0 && bytes[k] <= int64_t(response.size()), where, ": field '", names[k], "' = ", bytes[k],
               " is outside the normalised response (0..", response.size(), " bytes)");
      SK_CHECK(data::is_utf8_boundary(response, size_t(bytes[k])), where, ": field '", names[k], "' = ", bytes[k],
               " is not on a character boundary of the normalised response");
      cps[k] = int64_t(data::codepoint_of_byte(response, size_t(bytes[k])));
    }
    s_end = cps[0];
    k_end_off = cps[1];
  }
  SK_CHECK(s_end >= 0 && s_end <= resp_chars, where, ": field 'summary_end_idx' = ", s_end,
           " is outside the normalised response (0..", resp_chars, " characters)");
  SK_CHECK(k_end_off >= 0 && k_end_off <= resp_chars, where, ": field 'next_sentence_end_idx' = ", k_end_off,
           " is outside the normalised response (0..", resp_chars, " characters)");
  SK_CHECK(s_end < k_end_off, where, ": field 'next_sentence_end_idx' = ", k_end_off,
           " must be greater than summary_end_idx = ", s_end, " (K would be empty)");

  // Render both, with the thinking kept in the assistant turn.
  text::RenderOptions with_answer;
  with_answer.keep_thinking = opt.keep_thinking;
  text::RenderOptions query_opt;
  query_opt.add_generation_prompt = true;
  query_opt.keep_thinking = opt.keep_thinking;
  std::string input = fmt.render({{"user", in.question}, {"assistant", response}}, with_answer);
  std::string query = fmt.render({{"user", in.question}}, query_opt) + in.prefill;
  SK_CHECK(in.prefill.empty() || input.compare(0, query.size(), query) == 0, where, ": field 'prefill' does not "
           "follow the generation prompt in the rendered conversation (the response's thinking must start with it)");
  SK_CHECK(input.compare(0, query.size(), query) == 0 && input.size() >= query.size(), where,
           ": the rendered query (template with the generation prompt) is not a prefix of the rendered "
           "conversation; this template cannot give a query/response split (",
           fmt.where(), ")");

  // Where the response sits in the rendered input: its last occurrence (it is the last turn); if
  // the template altered the text after K (e.g. trimmed the end), locate response[:K end] instead.
  size_t resp_byte = input.rfind(response);
  if (resp_byte == std::string::npos) {
    std::string_view uk = data::slice_codepoints(response, 0, size_t(k_end_off));
    resp_byte = input.rfind(uk);
    SK_CHECK(resp_byte != std::string::npos, where,
             ": the response's text up to the end of K does not appear verbatim in the rendered conversation "
             "(the chat template changes it; ",
             fmt.where(), ")");
  }
  const int64_t query_chars = int64_t(data::codepoint_count(query));
  const int64_t resp_begin = int64_t(data::codepoint_count(std::string_view(input).substr(0, resp_byte)));
  const int64_t k_char_begin = resp_begin + s_end, k_char_end = resp_begin + k_end_off;
  SK_CHECK(k_char_begin >= query_chars, where, ": K (from summary_end_idx = ", s_end,
           ") starts inside the rendered query; U must end after the generation prompt");

  text::Encoding enc = tok.encode(input, false);
  std::vector<int32_t> query_ids = tok.encode_ids(query, false);
  SK_CHECK(query_ids.size() <= enc.ids.size() && std::equal(query_ids.begin(), query_ids.end(), enc.ids.begin()), where,
           ": the query's tokens are not a prefix of the conversation's tokens (the tokenizer merges across the "
           "end of the generation prompt)");
  const int64_t n = int64_t(enc.ids.size());
  const int64_t query_len = int64_t(query_ids.size());

  // K: tokens whose characters overlap [k_char_begin, k_char_end).
  int64_t k_begin = -1, k_end = -1;
  for (int64_t i = 0; i < n; ++i) {
    auto [s, e] = enc.offsets[size_t(i)];
    if (int64_t(s) < k_char_end && int64_t(e) > k_char_begin && e > s) {
      if (k_begin < 0) k_begin = i;
      k_end = i + 1;
    }
  }
  SK_CHECK(k_begin >= 0, where, ": no token covers K (characters ", k_char_begin, "..", k_char_end, ")");
  SK_CHECK(k_begin >= query_len, where, ": K's first token lies inside the query's tokens");
  SK_CHECK(k_begin > query_len, where, ": U is empty after the query (summary_end_idx = ", s_end,
           " ends inside the generation prompt or in the token K starts with)");

  // Truncation.
  int64_t left = 0, right = 0;
  if (opt.max_seq_len > 0 && n > opt.max_seq_len) {
    if (k_end <= opt.max_seq_len) {
      right = n - opt.max_seq_len;
    } else {
      SK_CHECK(opt.allow_query_truncation, where, ": query, U and K need ", k_end, " tokens but max_seq_len is ",
               opt.max_seq_len, " (allow query truncation to keep the last max_seq_len tokens, as the reference)");
      left = n - opt.max_seq_len;
      SK_CHECK(left <= query_len, where, ": keeping the last ", opt.max_seq_len,
               " tokens would cut into U (the response alone is longer than max_seq_len)");
    }
  }

  data::TokenizedExample ex;
  std::vector<int64_t> ids = widen(enc.ids);
  ex.input_ids.assign(ids.begin() + left, ids.end() - right);
  ex.query_len = query_len - left;
  ex.labels = ex.input_ids;
  std::fill(ex.labels.begin(), ex.labels.begin() + ex.query_len, int64_t(-100));
  ex.u_begin = query_len - left;
  ex.u_end = k_begin - left;
  ex.k_begin = k_begin - left;
  ex.k_end = k_end - left;
  ex.unsafe = in.unsafe;
  ex.source = in.origin;
  ex.record_index = in.record_index;

  if (detail) {
    detail->input_text = input;
    detail->query_text = query;
    detail->response = response;
    detail->query_chars = query_chars;
    detail->response_char_begin = resp_begin;
    detail->u_char_begin = std::max(resp_begin, query_chars);
    detail->k_char_begin = k_char_begin;
    detail->k_char_end = k_char_end;
    detail->token_offsets = enc.offsets;
    detail->truncated_left = left;
    detail->truncated_right = right;
  }
  return ex;
}

data::TokenizedExample build_example(const text::Tokenizer& tok, const text::ChatFormat& fmt, const data::Record& r,
                                     const SpanOptions& opt, SpanDetail* detail) {
  SK_CHECK(r.has_spans, r.origin, ": record has no summary_end_idx / next_sentence_end_idx");
  SpanInput in;
  in.question = r.question;
  in.response = r.response;
  in.summary_end_idx = r.summary_end_idx;
  in.next_sentence_end_idx = r.next_sentence_end_idx;
  in.unsafe = r.unsafe;
  in.prefill = r.prefill;
  in.origin = r.origin;
  in.record_index = r.index;
  return build_example(tok, fmt, in, opt, detail);
}

}  // namespace safekey::data
