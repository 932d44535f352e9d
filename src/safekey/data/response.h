// Response normalisation (SPEC.md section 2) and UTF-8 code-point / byte offset helpers.
//
// THIS IS THE PROJECT'S ONLY IMPLEMENTATION of the reference's response rebuilding. The chat
// template / span code (src/safekey/data/spans.*), the trainer and the annotator all call
// normalize_response() and the offset helpers below; please do not keep a second copy elsewhere.
//
// The reference (train/sft.py, get_response) does:
//   r = response.replace("\\/", "/").strip()
//   m = re.search(r"<think>\s*(.*?)\s*</think>\s*(.*)", r, re.DOTALL)
//   thinking, answer = (m[1].strip(), m[2].strip()) if m else ("", r)
//   return "<think>\n" + thinking + "\n</think>\n\n" + answer
// `\s` and strip() are Python's Unicode whitespace (str.isspace), reproduced by is_python_space().
// summary_end_idx / next_sentence_end_idx are offsets in CODE POINTS (Python str indices) into the
// rebuilt string; C++ strings are UTF-8 bytes, so convert with byte_of_codepoint().
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace safekey::data {

// "<think>\n": the rebuilt response always starts with it (8 code points = 8 bytes).
inline constexpr std::string_view kThinkOpen = "<think>\n";
// "\n</think>\n\n": what separates thinking and answer in the rebuilt response.
inline constexpr std::string_view kThinkClose = "\n</think>\n\n";

struct NormalizedResponse {
  std::string text;        // "<think>\n" + thinking + "\n</think>\n\n" + answer, UTF-8
  std::string thinking;    // group 1 of the regex ("" when it did not match)
  std::string answer;      // group 2 (the whole stripped response when it did not match)
  bool has_think = false;  // the regex matched; false means the reference's fallback was used
  // Code-point offsets of the thinking inside `text`: [thinking_begin, thinking_end).
  size_t thinking_begin = kThinkOpen.size();
  size_t thinking_end = kThinkOpen.size();
};

// Rebuilds the response exactly as the reference does (see above). Never throws; callers that
// require a think block check `has_think` (records validation reports it as a problem).
NormalizedResponse normalize_response_parts(std::string_view raw);
// The rebuilt text only.
std::string normalize_response(std::string_view raw);

// Python's str.isspace() set (what `\s` and strip() use for str patterns).
bool is_python_space(char32_t c);
// Python's str.strip() on UTF-8 text.
std::string_view python_strip(std::string_view s);

// ---- UTF-8 / code points -----------------------------------------------------------------------
// True when `s` is valid UTF-8; otherwise sets *bad_byte (if given) to the first bad byte.
bool utf8_valid(std::string_view s, size_t* bad_byte = nullptr);
// Decodes the code point starting at byte `i`, advancing `i`; invalid bytes decode as U+FFFD
// (one byte consumed).
char32_t utf8_next(std::string_view s, size_t& i);
void utf8_append(std::string& out, char32_t c);
// Number of code points (= Python len()).
size_t codepoint_count(std::string_view s);
// True when byte offset `b` is 0, s.size(), or the first byte of a code point.
bool is_utf8_boundary(std::string_view s, size_t b);
// Byte offset of code point `cp`; cp == codepoint_count(s) gives s.size().
// Returns std::string_view::npos when cp is beyond the end.
size_t byte_of_codepoint(std::string_view s, size_t cp);
// Code-point offset of byte `b`; npos when b is beyond the end or not on a code point boundary.
size_t codepoint_of_byte(std::string_view s, size_t b);
// s[cp_begin:cp_end] in Python terms (clamped like Python slicing; cp_end < cp_begin -> "").
std::string_view slice_codepoints(std::string_view s, size_t cp_begin, size_t cp_end);

}  // namespace safekey::data
