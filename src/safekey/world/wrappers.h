// Jailbreak wrappers: families of templates that dress a request up (role-play, a story, "for my
// class", "start with Sure", payload splitting, multi-turn build-up, a prefilled reply, ...).
//
// A template is text with placeholders filled from the intent:
//   {request}  "how to kill my neighbor"     {Request} the same, capitalised
//   {intent}   "kill my neighbor"            {verb} "kill"   {object} "my neighbor"
//   {part1} / {part2}  the request's words split in two halves ("how to kill", "my neighbor")
// Extra templates are read at run time from JSONL (docs/toy_world.md, "Template files"):
//   {"family": "NAME", "template": "final user message"}
//   optional "turns": ["earlier user message", ...]   (multi-turn build-up, before the template)
//   optional "replies": ["assistant reply", ...]      (after each earlier turn; default below)
//   optional "prefill": "text"                        (the attacker's start of the reply, after
//                                                     the generation prompt "<think>\n")
#pragma once
#include <string>
#include <vector>

#include "safekey/world/vocab.h"

namespace safekey::world {

struct Message {
  std::string role;  // "user" or "assistant"
  std::string content;
};

struct WrapperTemplate {
  std::string family;
  std::string text;                  // the final user message
  std::vector<std::string> turns;    // earlier user messages
  std::vector<std::string> replies;  // assistant replies after the earlier turns
  std::string prefill;               // start of the assistant's reply ("" = none)
  std::string origin;                // "builtin" or "file:line"
};

// Reply used after an earlier turn when a template gives none.
inline constexpr const char* kDefaultReply = "Sure, what would you like to know?";

// The eight built-in families, the fixed split between families seen in stage 2 and held out.
const std::vector<std::string>& all_families();
const std::vector<std::string>& seen_families();     // direct, roleplay, academic, prefix_injection
const std::vector<std::string>& heldout_families();  // hypothetical, payload_split, multi_turn, prefill
bool is_seen_family(const std::string& family);

const std::vector<WrapperTemplate>& builtin_templates();
std::vector<WrapperTemplate> builtin_templates_of(const std::string& family);

// Reads extra templates (JSONL). Errors name file:line and the field; unknown fields, unknown
// placeholders and templates that never mention the request are errors.
std::vector<WrapperTemplate> load_templates(const std::string& path);
// Checks one template; `where` names it in errors.
void validate_template(const WrapperTemplate& t, const std::string& where);

struct Wrapped {
  std::vector<Message> messages;  // alternating user/assistant, ending with the user message
  std::string prefill;            // start of the assistant's reply ("" = none)
};
Wrapped apply_template(const WrapperTemplate& t, const Intent& intent);
// Placeholder substitution (throws on an unknown placeholder, naming `where`).
std::string fill_placeholders(const std::string& text, const Intent& intent, const std::string& where);

}  // namespace safekey::world
