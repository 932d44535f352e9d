// Answer extraction and equality for MATH-500 and AIME 2024 (docs/evaluation.md lists the rules).
//
// Extraction: the content of the LAST \boxed{...} (or \fbox{...}) in the answer part, with balanced
// braces; "\boxed 5" (no braces) takes the next token. No \boxed -> no answer (counted wrong).
// Normalisation (normalize_math_answer): remove surrounding $...$, "\left"/"\right", "\!", "\,",
// "\;", "\:", "\ "; "\dfrac"/"\tfrac" -> "\frac"; "^\circ"/"^{\circ}", "\%"/"%", "\$"; \text{...},
// \textbf{...}, \mbox{...} around the whole answer are unwrapped, and a trailing unit in \text{..} or
// \mbox{..} after a value is dropped; "x=" / "y =" prefixes of a single equation; whitespace;
// trailing "." ; "\frac12" -> "\frac{1}{2}"; a number's thousands separators ("10{,}080", "10,080"
// when every group has 3 digits) and trailing ".0" / ".000"; leading "0" before a decimal point is
// added (".5" -> "0.5"). Two answers are equal when their normalised strings are equal, or when both
// parse as plain numbers (integers, decimals, a/b, \frac{a}{b}) with the same value (|diff| < 1e-9).
#pragma once
#include <optional>
#include <string>

namespace safekey::eval {

// Content of the last \boxed{...}; nullopt when there is none.
std::optional<std::string> extract_boxed(const std::string& text);
std::string normalize_math_answer(const std::string& answer);
bool math_answers_equal(const std::string& predicted, const std::string& reference);

struct Grade {
  bool has_answer = false;
  std::string extracted;  // the raw extracted answer ("" when none)
  bool correct = false;
};
// MATH-500: boxed extraction + normalised equality.
Grade grade_math(const std::string& answer_part, const std::string& reference);
// AIME: boxed extraction (or, without \boxed, the last integer in the answer part); the answer is
// correct when it is an integer equal to the reference.
Grade grade_aime(const std::string& answer_part, const std::string& reference);

}  // namespace safekey::eval
