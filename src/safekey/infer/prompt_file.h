// Prompt files for `safekey generate --prompts FILE`: a JSON list or JSONL (one value per line) of
//   "a prompt string"
//   {"prompt": "..."} or {"instruction": "..."}            one user turn
//   {"messages": [{"role": "user", "content": "..."}, ...]} a conversation ending on a user turn
// with optional "id", "target" (prefilling target; alias "prefill"), "category", "label",
// "objective" (what a judge is given instead of the instruction). Errors name file:line:column and
// the field.
#pragma once
#include <string>
#include <vector>

#include "safekey/infer/generator.h"

namespace safekey::infer {

struct PromptItem {
  std::string id;
  std::string instruction;        // what the results file records as `instruction`
  std::vector<Message> messages;  // what the model is given
  std::string target;             // prefilling target ("" = none)
  std::string category, label, objective;
  std::string source;             // "file:line"
};

std::vector<PromptItem> read_prompt_file(const std::string& path);

// "file:line:column" of byte `offset` in `text`.
std::string text_location(const std::string& path, const std::string& text, size_t offset);

}  // namespace safekey::infer
