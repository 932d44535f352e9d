// Sentence segmentation; see sentences.h.
#include "safekey/data/sentences.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>

#include "safekey/data/response.h"

namespace safekey::data {

namespace {

// text[..i) ends with a closing quotation mark right after '.', '?' or '!': `."`  `?”`.
bool after_closing_quote(std::string_view text, size_t i) {
  static constexpr std::string_view kRight = "\u201D";
  size_t q = 0;
  if (i >= 1 && text[i - 1] == '"')
    q = 1;
  else if (i >= kRight.size() && text.substr(i - kRight.size(), kRight.size()) == kRight)
    q = kRight.size();
  if (q == 0 || i < q + 1) return false;
  const char p = text[i - q - 1];
  return p == '.' || p == '?' || p == '!';
}

// The regex split; with `quotes`, also at whitespace after a closing quote that ends a sentence.
std::vector<Sentence> split_at_boundaries(std::string_view text, bool quotes) {
  std::vector<Sentence> out;
  if (text.empty()) return out;
  size_t start = 0;
  for (size_t i = 0; i < text.size();) {
    size_t j = i;
    const char32_t c = utf8_next(text, j);
    const bool after_stop = i > 0 && (text[i - 1] == '.' || text[i - 1] == '?');
    const bool after_ellipsis = i >= 3 && text.substr(i - 3, 3) == "...";
    const bool boundary = (after_stop && !after_ellipsis) || (quotes && after_closing_quote(text, i));
    if (!is_python_space(c) || !boundary) {
      i = j;
      continue;
    }
    // A separator: the whole whitespace run from i.
    size_t k = j;
    while (k < text.size()) {
      size_t m = k;
      if (!is_python_space(utf8_next(text, m))) break;
      k = m;
    }
    out.push_back({start, i, false});
    start = k;
    i = k;
  }
  out.push_back({start, text.size(), false});
  return out;
}

}  // namespace

std::vector<Sentence> split_sentences_reference(std::string_view text) {
  return split_at_boundaries(text, false);
}

namespace {

// A double quotation is open at the end of s: an odd number of '"', or more '“' than '”'.
bool open_quote(std::string_view s) {
  const auto straight = std::count(s.begin(), s.end(), '"');
  size_t left = 0, right = 0;
  for (size_t at = s.find("\u201C"); at != std::string_view::npos; at = s.find("\u201C", at + 1)) ++left;
  for (size_t at = s.find("\u201D"); at != std::string_view::npos; at = s.find("\u201D", at + 1)) ++right;
  return straight % 2 == 1 || left > right;
}

// The last whitespace-separated word of s.
std::string_view last_word(std::string_view s) {
  const size_t sp = s.find_last_of(" \t\n\r");
  return sp == std::string_view::npos ? s : s.substr(sp + 1);
}

}  // namespace

bool ends_in_abbreviation(std::string_view sentence) {
  std::string w(last_word(sentence));
  while (!w.empty() && (w.front() == '(' || w.front() == '"' || w.front() == '\'')) w.erase(0, 1);
  if (w.size() < 2 || w.back() != '.') return false;
  // Initials: "J." "J.K." "J.R.R." (one capital letter per dot). A single initial counts only after
  // a capitalised word ("Viktor E. Frankl"), so "plan A. Then" still ends a sentence; country
  // abbreviations often end sentences and are left alone.
  bool initials = true;
  for (size_t i = 0; i < w.size(); i += 2)
    initials = initials && i + 1 < w.size() && std::isupper(static_cast<unsigned char>(w[i])) && w[i + 1] == '.';
  if (initials && w.size() <= 6) {
    if (w == "U.S." || w == "U.K." || w == "U.N." || w == "E.U.") return false;
    if (w.size() > 2) return true;
    const std::string_view before = sentence.substr(0, sentence.size() - last_word(sentence).size());
    const std::string_view prev = last_word(before.substr(0, before.find_last_not_of(" \t\n\r") + 1));
    // A name: "Viktor" (capital, then lowercase), not "CEO X." or "Plan A.".
    return prev.size() >= 2 && std::isupper(static_cast<unsigned char>(prev[0])) &&
           std::islower(static_cast<unsigned char>(prev[1]));
  }
  static const std::array<const char*, 14> kAbbrev = {"e.g.", "i.e.", "Mr.", "Mrs.", "Ms.", "Dr.", "St.",
                                                     "vs.", "Jr.", "Sr.", "Prof.", "approx.", "cf.", "No."};
  return std::any_of(kAbbrev.begin(), kAbbrev.end(), [&](const char* a) { return w == a; });
}

std::vector<Sentence> split_sentences(std::string_view text) {
  constexpr int kMaxQuoteJoins = 4;  // a stray quotation mark must not swallow the text
  std::vector<Sentence> pieces = split_at_boundaries(text, true);
  std::vector<Sentence> out;
  for (size_t i = 0; i < pieces.size(); ++i) {
    Sentence s = pieces[i];
    int quote_joins = 0;
    while (i + 1 < pieces.size()) {
      const std::string_view cur = text.substr(s.begin, s.end - s.begin);
      const char next0 = text[pieces[i + 1].begin];
      if (ends_in_abbreviation(cur) || std::islower(static_cast<unsigned char>(next0))) {
        s.merged = true;
      } else if (open_quote(cur) && quote_joins < kMaxQuoteJoins) {
        ++quote_joins;
      } else {
        break;
      }
      s.end = pieces[++i].end;
    }
    out.push_back(s);
  }
  return out;
}

}  // namespace safekey::data
