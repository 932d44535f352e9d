// Multiple-choice benchmarks (GPQA-Diamond, MMLU-Pro): the prompt, the letter taken from a reply,
// and grading (docs/evaluation.md, "Multiple choice").
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "safekey/util/json.h"

namespace safekey::eval {

// simple-evals' multiple-choice template, with as many letters as options (A.. up to J):
// "Answer the following multiple choice question. The last line of your response should be of the
// following format: 'Answer: $LETTER' (without quotes) where LETTER is one of ABCD. Think step by
// step before answering.\n\n<question>\n\nA) ..\nB) ..".
std::string multiple_choice_prompt(const std::string& question,
                                   const std::vector<std::string>& options);

// The chosen letter in a reply's answer part (after the last </think>), among the first
// `n_options` letters. In order, the last match of: "Answer: X" (any case for "answer", optional
// markdown / $ / parentheses around X); "answer is (X)"; "\boxed{X}" (also \boxed{\text{X}}); a
// final line that is just "X", "(X)" or "X)". Nothing found: nullopt.
std::optional<char> extract_choice_letter(const std::string& reply, int n_options);

// Grades every response of a results document: item["answer"] is the correct letter and
// item["n_options"] the number of options (default 4). Writes item["grade"] =
// [{has_answer, extracted, reference, correct}] per response.
void grade_choice_results(json& doc);

}  // namespace safekey::eval
