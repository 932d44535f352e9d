#include "safekey/eval/math_grader.h"

#include <cctype>
#include <cmath>
#include <regex>

namespace safekey::eval {

namespace {

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) return;
  size_t p = 0;
  while ((p = s.find(from, p)) != std::string::npos) {
    s.replace(p, from.size(), to);
    p += to.size();
  }
}

// s[open] == '{': index of its matching '}', or npos.
size_t match_brace(const std::string& s, size_t open) {
  int depth = 0;
  for (size_t i = open; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {  // escaped brace "\{" does not count
      ++i;
      continue;
    }
    if (s[i] == '{') ++depth;
    if (s[i] == '}' && --depth == 0) return i;
  }
  return std::string::npos;
}

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  size_t b = s.find_last_not_of(" \t\r\n");
  return s.substr(a, b - a + 1);
}

// Unwraps `\cmd{X}` when it spans the whole string.
bool unwrap_whole(std::string& s, const std::string& cmd) {
  if (s.rfind(cmd + "{", 0) != 0) return false;
  size_t close = match_brace(s, cmd.size());
  if (close != s.size() - 1) return false;
  s = s.substr(cmd.size() + 1, close - cmd.size() - 1);
  return true;
}

// "\frac12" -> "\frac{1}{2}", "\frac1{2}" -> "\frac{1}{2}", "\sqrt2" -> "\sqrt{2}".
std::string fix_short_args(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    bool frac = s.compare(i, 5, "\\frac") == 0, sqrt = s.compare(i, 5, "\\sqrt") == 0;
    if (!frac && !sqrt) {
      out += s[i++];
      continue;
    }
    out += s.substr(i, 5);
    i += 5;
    for (int arg = 0; arg < (frac ? 2 : 1) && i < s.size(); ++arg) {
      if (s[i] == '{') {
        size_t close = match_brace(s, i);
        if (close == std::string::npos) break;
        out += s.substr(i, close - i + 1);
        i = close + 1;
      } else {
        out += std::string("{") + s[i] + "}";
        ++i;
      }
    }
  }
  return out;
}

std::optional<double> as_number(const std::string& s) {
  static const std::regex num(R"(^-?\d+(\.\d+)?$)");
  static const std::regex slash(R"(^(-?\d+)/(\d+)$)");
  static const std::regex frac(R"(^(-?)\\frac\{(-?\d+)\}\{(\d+)\}$)");
  std::smatch m;
  if (std::regex_match(s, num)) return std::stod(s);
  if (std::regex_match(s, m, slash) && std::stod(m[2]) != 0) return std::stod(m[1]) / std::stod(m[2]);
  if (std::regex_match(s, m, frac) && std::stod(m[3]) != 0)
    return (m[1].length() ? -1.0 : 1.0) * std::stod(m[2]) / std::stod(m[3]);
  return std::nullopt;
}

}  // namespace

std::optional<std::string> extract_boxed(const std::string& text) {
  size_t best = std::string::npos, best_len = 0;
  for (const char* cmd : {"\\boxed", "\\fbox"}) {
    size_t p = text.rfind(cmd);
    if (p != std::string::npos && (best == std::string::npos || p > best)) {
      best = p;
      best_len = std::char_traits<char>::length(cmd);
    }
  }
  if (best == std::string::npos) return std::nullopt;
  size_t i = best + best_len;
  while (i < text.size() && text[i] == ' ') ++i;
  if (i < text.size() && text[i] == '{') {
    size_t close = match_brace(text, i);
    if (close == std::string::npos) return std::nullopt;
    return text.substr(i + 1, close - i - 1);
  }
  // "\boxed 5": the next token up to a space, '$' or end.
  size_t j = i;
  while (j < text.size() && text[j] != ' ' && text[j] != '$' && text[j] != '\n') ++j;
  if (j == i) return std::nullopt;
  return text.substr(i, j - i);
}

std::string normalize_math_answer(const std::string& in) {
  std::string s = trim(in);
  // Surrounding math delimiters.
  while (s.size() >= 2 && s.front() == '$' && s.back() == '$') s = trim(s.substr(1, s.size() - 2));
  if (s.rfind("\\(", 0) == 0 && s.size() >= 4 && s.compare(s.size() - 2, 2, "\\)") == 0)
    s = trim(s.substr(2, s.size() - 4));
  for (const char* cmd : {"\\text", "\\textbf", "\\mbox", "\\mathrm", "\\boxed"})
    while (unwrap_whole(s, cmd)) s = trim(s);
  // A trailing unit after a value: "15\mbox{ cm}^2", "5 \text{ inches}".
  static const std::regex unit(R"(^(.*[0-9}])\s*\\(text|mbox|mathrm)\{[^{}]*\}(\^\{?\d\}?)?$)");
  std::smatch m;
  if (std::regex_match(s, m, unit)) s = m[1];
  replace_all(s, "\\left", "");
  replace_all(s, "\\right", "");
  for (const char* sp : {"\\!", "\\,", "\\;", "\\:", "\\ "}) replace_all(s, sp, "");
  replace_all(s, "\\dfrac", "\\frac");
  replace_all(s, "\\tfrac", "\\frac");
  replace_all(s, "^{\\circ}", "");
  replace_all(s, "^\\circ", "");
  replace_all(s, "\\%", "");
  replace_all(s, "%", "");
  replace_all(s, "\\$", "");
  replace_all(s, "{,}", "");
  // Whitespace.
  std::string t;
  for (char c : s)
    if (!std::isspace(static_cast<unsigned char>(c))) t += c;
  s = t;
  while (!s.empty() && s.back() == '.') s.pop_back();
  // "x=5" -> "5" (one simple left-hand side only).
  static const std::regex lhs(R"(^[a-zA-Z]=(.+)$)");
  if (std::regex_match(s, m, lhs)) s = m[1];
  s = fix_short_args(s);
  // Thousands separators in a plain number: 10,080 -> 10080.
  static const std::regex thousands(R"(^-?\d{1,3}(,\d{3})+(\.\d+)?$)");
  if (std::regex_match(s, thousands)) replace_all(s, ",", "");
  // Trailing zeros of a decimal: 2.50 -> 2.5, 3.0 -> 3.
  static const std::regex decimal(R"(^-?\d*\.\d+$)");
  if (std::regex_match(s, decimal)) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
    if (s.rfind(".", 0) == 0) s = "0" + s;
    if (s.rfind("-.", 0) == 0) s = "-0" + s.substr(1);
  }
  return s;
}

bool math_answers_equal(const std::string& predicted, const std::string& reference) {
  std::string a = normalize_math_answer(predicted), b = normalize_math_answer(reference);
  if (a.empty()) return false;
  if (a == b) return true;
  auto x = as_number(a), y = as_number(b);
  return x && y && std::fabs(*x - *y) < 1e-9;
}

Grade grade_math(const std::string& answer_part, const std::string& reference) {
  Grade g;
  auto box = extract_boxed(answer_part);
  if (!box) return g;
  g.has_answer = true;
  g.extracted = *box;
  g.correct = math_answers_equal(*box, reference);
  return g;
}

Grade grade_aime(const std::string& answer_part, const std::string& reference) {
  Grade g;
  auto box = extract_boxed(answer_part);
  std::string cand;
  if (box) {
    cand = *box;
  } else {
    static const std::regex integer(R"(-?\d+)");
    for (auto it = std::sregex_iterator(answer_part.begin(), answer_part.end(), integer);
         it != std::sregex_iterator(); ++it)
      cand = it->str();
    if (cand.empty()) return g;
  }
  g.has_answer = true;
  g.extracted = cand;
  std::string a = normalize_math_answer(cand), b = normalize_math_answer(reference);
  static const std::regex integer_only(R"(^-?\d+$)");
  auto strip_zeros = [](std::string v) {
    bool neg = !v.empty() && v[0] == '-';
    if (neg) v = v.substr(1);
    size_t nz = v.find_first_not_of('0');
    v = nz == std::string::npos ? "0" : v.substr(nz);
    return (neg && v != "0" ? "-" : "") + v;
  };
  if (std::regex_match(a, integer_only) && std::regex_match(b, integer_only))
    g.correct = strip_zeros(a) == strip_zeros(b);
  return g;
}

}  // namespace safekey::eval
