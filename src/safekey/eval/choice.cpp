#include "safekey/eval/choice.h"

#include <regex>

#include "safekey/eval/results.h"

namespace safekey::eval {

namespace {
const char kLetters[] = "ABCDEFGHIJ";
}

std::string multiple_choice_prompt(const std::string& question,
                                   const std::vector<std::string>& options) {
  SK_CHECK(options.size() >= 2 && options.size() <= 10,
           "a multiple-choice question needs 2 to 10 options (has ", options.size(), ")");
  std::string letters(kLetters, options.size());
  std::string p =
      "Answer the following multiple choice question. The last line of your response should be of "
      "the "
      "following format: 'Answer: $LETTER' (without quotes) where LETTER is one of " +
      letters + ". Think step by step before answering.\n\n" + question + "\n";
  for (size_t i = 0; i < options.size(); ++i) p += cat("\n", kLetters[i], ") ", options[i]);
  return p;
}

std::optional<char> extract_choice_letter(const std::string& reply, int n_options) {
  const std::string text = extract_part(reply, Part::kAnswer);
  const char last = kLetters[std::max(1, std::min(n_options, 10)) - 1];
  const std::string cls = std::string("[A-") + last + "]";
  auto last_match = [&](const std::regex& re) -> std::optional<char> {
    std::optional<char> found;
    for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator();
         ++it)
      found = (*it)[1].str()[0];
    return found;
  };
  const std::string around = "[ \\t*_$(\\[]*";
  const std::regex answer_colon("[Aa][Nn][Ss][Ww][Ee][Rr][ \\t*_]*:" + around + "(" + cls +
                                ")(?![A-Za-z])");
  const std::regex answer_is("[Aa]nswer is" + around + "(" + cls + ")(?![A-Za-z])");
  const std::regex boxed("\\\\boxed\\{(?:\\\\text\\{)?[ (]*(" + cls + ")[ )]*\\}");
  for (const auto* re : {&answer_colon, &answer_is, &boxed})
    if (auto c = last_match(*re)) return c;
  // A final line holding only the letter.
  size_t end = text.find_last_not_of(" \t\r\n");
  if (end == std::string::npos) return std::nullopt;
  size_t start = text.rfind('\n', end);
  std::string line = text.substr(start == std::string::npos ? 0 : start + 1,
                                 end - (start == std::string::npos ? 0 : start + 1) + 1);
  std::smatch m;
  if (std::regex_match(line, m, std::regex("[ \\t*_]*\\(?(" + cls + ")[).]?[ \\t*_]*")))
    return m[1].str()[0];
  return std::nullopt;
}

void grade_choice_results(json& doc) {
  json& data = doc["data"];
  for (size_t i = 0; i < data.size(); ++i) {
    json& item = data[i];
    SK_CHECK(item.contains("answer") && item["answer"].is_string() &&
                 item["answer"].get<std::string>().size() == 1,
             "results data[", i,
             "]: multiple-choice item needs 'answer' holding the correct letter");
    const std::string ref = item["answer"];
    const int n = item.value("n_options", 4);
    json grades = json::array();
    for (const auto& r : item["response"]) {
      auto c = extract_choice_letter(r.get<std::string>(), n);
      std::string got = c ? std::string(1, *c) : "";
      grades.push_back({{"has_answer", c.has_value()},
                        {"extracted", got},
                        {"reference", ref},
                        {"correct", c.has_value() && got == ref}});
    }
    item["grade"] = std::move(grades);
  }
}

}  // namespace safekey::eval
