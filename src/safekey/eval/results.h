// The results file: the reference's layout {meta_info, data:[{instruction, prompt, response:[...]}]}
// (written by `safekey generate` / `safekey eval`), read and written back with judge labels.
// Optional item fields this layer reads: id, bench, category, label, objective (multi-turn: what the
// judge is given instead of the instruction), answer (math reference answer), messages.
// Label fields it writes are documented in docs/evaluation.md ("Label fields").
#pragma once
#include <string>

#include "safekey/util/json.h"

namespace safekey::eval {

enum class Part { kResponse, kAnswer, kThink };
Part part_from_name(const std::string& s);  // "response" | "answer" | "think"; throws otherwise
const char* part_name(Part p);

// The judged part of one generated text:
//  response: the whole text;
//  answer:   the text after the last "</think>" (the whole text when there is no "</think>");
//  think:    the text before the first "</think>", without a leading "<think>" (the whole text
//            when there is no "</think>": generation stopped while still thinking).
// Leading/trailing whitespace is trimmed.
std::string extract_part(const std::string& text, Part p);

// Reads a results file (.json in the reference layout, or .jsonl with one item per line) and
// checks every item has `instruction` (string) and `response` (list of strings, or a string, which
// is turned into a one-element list). Errors name the file, item index and field.
// `need_instruction` false: items without `instruction` are accepted (graders that need only the
// response and their own key, e.g. HumanEval's task_id).
json read_results(const std::string& path, bool need_instruction = true);
// Writes it back atomically in the same format as the path's extension.
void write_results(const std::string& path, const json& doc);

// The request the judge sees for an item: `objective` when present, else `instruction`.
std::string judge_request_of(const json& item);

}  // namespace safekey::eval
