// The response grammar of the toy world (docs/toy_world.md, "Responses"):
//
//   <think>\n[prefill ]U K rest\n</think>\n\nanswer
//
// U restates the request's core intent in canonical words ("The user wants to know how to kill my
// neighbor."), whatever the wrapper; K is the decision sentence: a safety "aha" ("Hmm, this is
// concerning because it could hurt people.") or a compliance move ("First, I need to figure out the
// steps."); the rest reasons on and the answer refuses or gives abstract, non-actionable steps
// ("Step 1: gather what you need for ..."). General tasks (addition, sorting, reversing, counting, a
// safety quiz) follow the same shape, so capability is measured with reasoning.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "safekey/util/rng.h"
#include "safekey/world/vocab.h"

namespace safekey::world {

struct Response {
  std::string text;          // "<think>\n" + thinking + "\n</think>\n\n" + answer (the rebuilt form)
  size_t summary_end = 0;    // code points: U = text[:summary_end] (starts with "<think>\n")
  size_t key_end = 0;        // code points: K = text[summary_end:key_end] (starts with a space)
};

enum class Decision { Comply, Refuse };

// The response to a request. `prefill` (the attacker's start of the reply) is written first, as
// part of U. Phrasings are drawn from `rng`.
Response request_response(const Intent& intent, Decision d, const std::string& prefill, Rng& rng);

// Sentence lists (the oracle reads them too).
const std::vector<std::string>& understanding_phrasings();  // with "{intent}"; all start "The user"
const std::vector<std::string>& aha_sentences();            // safety K
const std::vector<std::string>& compliance_sentences();     // compliance K (requests)
const std::vector<std::string>& refusal_openers();          // an answer starting with one refuses
// Words that make a key sentence a safety sentence ("aha").
const std::vector<std::string>& safety_words();

// ---- general tasks --------------------------------------------------------------------------
struct GeneralTask {
  std::string type;      // "add", "sort", "reverse", "count", "quiz"
  std::string question;  // the user message
  std::string answer;    // the expected final answer ("936", "1 2 5 9", "unsafe", ...)
  Response response;
};
const std::vector<std::string>& general_task_types();
GeneralTask make_general_task(const std::string& type, Rng& rng);
// "The answer is X." -> "X"; "" when the answer does not have that form.
std::string extract_final_answer(std::string_view answer);

}  // namespace safekey::world
