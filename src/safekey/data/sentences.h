// Sentence segmentation of reasoning text, as the reference's analysis does it (SPEC.md section 2):
// Python `re.split(r"(?<=[.?])(?<!\.\.\.)\s+", thinking)` - split at every run of whitespace that
// follows '.' or '?' unless it follows "...". Implemented as a scan (no lookbehind needed) with
// Python's Unicode whitespace. The annotator then optionally re-joins splits that the regex makes
// after initials and common abbreviations ("J.K. Rowling", "e.g. this").
#pragma once
#include <cstddef>
#include <string_view>
#include <vector>

namespace safekey::data {

// One sentence: bytes [begin, end) of the text. `end` is just after the sentence's last character
// (its '.' or '?'); the whitespace separating it from the next sentence is in neither.
struct Sentence {
  size_t begin = 0;
  size_t end = 0;
  bool merged = false;  // joined across an abbreviation / lowercase split (split_sentences only)
};

// Exactly the reference regex split. "" gives no sentences (Python gives [""]).
std::vector<Sentence> split_sentences_reference(std::string_view text);

// What the annotator uses: the reference's boundaries, plus a boundary at whitespace after a
// closing quotation mark that ends a sentence (`asking, "Is it safe?" That's ...`); then a piece is
// joined with the next while a double quotation is still open in it (at most 4 joins), or when it
// ends in an initial or a common abbreviation ("J.K.", "Viktor E.", "e.g.", "Mr.", "Dr.", "vs.", ...)
// or the next piece starts with a lowercase letter (those joins set `merged`).
std::vector<Sentence> split_sentences(std::string_view text);

// True when a sentence piece ends in an initial or a common abbreviation ("J.K.", "Viktor E.",
// "e.g.", "Dr.", ...): split_sentences joins such a piece with the next.
bool ends_in_abbreviation(std::string_view sentence);

}  // namespace safekey::data
