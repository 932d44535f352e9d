// The toy world's datasets, deterministic from a seed (docs/toy_world.md, "Datasets and splits"):
//   stage 1  helpful-only reasoning data: general tasks + requests of every kind under ALL wrapper
//            families, always complying, U always restating the intent;
//   stage 2  STAR-like safety data in the reference record format: harmful requests (stage-2 pairs,
//            seen families) -> refusal with a safety-aha K; benign look-alikes (source "4o_rewrite",
//            seen families) -> helpful answer;
//   eval     prompts with their truth, one split per question the demo asks (eval_split_names()).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "safekey/util/json.h"
#include "safekey/world/grammar.h"
#include "safekey/world/vocab.h"
#include "safekey/world/wrappers.h"

namespace safekey::world {

// One prompt of the world with its truth, and (training data) its target response.
struct Item {
  std::string id;
  std::string split;
  Kind kind = Kind::General;
  Intent intent;                 // requests only
  std::string family;            // wrapper family; "" for general tasks
  std::string template_origin;   // "builtin" or the template file:line
  std::string task;              // general tasks: "add", "sort", ...
  std::string expected_answer;   // general tasks
  std::vector<Message> messages; // ends with the user turn
  std::string prefill;           // the attacker's start of the reply ("" = none)
  // v2: a training record with a prefill keeps it in the prompt (record field "prefill": no loss on
  // it, U starts after it); v1 trains on it as part of the response.
  bool prefill_in_prompt = false;
  bool explicit_label = false;   // v2: the record carries "unsafe" (replayed general tasks are safe)
  bool has_response = false;
  Response response;             // target (training splits)
  bool unsafe() const { return kind == Kind::Harmful; }
  std::string source() const;    // "4o_rewrite" for benign look-alikes, else "toy_<kind>"
};

struct WorldConfig {
  int version = 2;               // 1: the first world exactly (docs/toy_world.md); 2: see "World v2"
  uint64_t seed = 2002;
  int64_t stage1_requests = 2400;
  int64_t stage1_general = 1600;
  int64_t stage2_harmful = 240;
  int64_t stage2_benign = 240;
  int64_t eval_per_split = 40;
  int64_t eval_general = 50;
  // v2 only (0 in v1):
  int64_t stage2_replay = 160;   // general tasks replayed in stage 2 (keeps the base model's ability)
  int64_t stage2_attacks = 80;   // harmful stage-2 records that stage2_pf.json replaces with a
                                 //   prefill / multi-turn build-up in the seen families' style
  int64_t val_per_split = 40;    // validation prompts: seen families, disjoint from stage-2 prompts
  int64_t val_general = 50;
  std::vector<WrapperTemplate> extra_templates;  // --jailbreak-templates
  static WorldConfig v1();
  static WorldConfig quick(int version = 2);
  json to_json() const;
};

struct Datasets {
  std::vector<Item> stage1, stage2;
  std::vector<Item> stage2_pf;                    // v2: stage 2 with the attack-shaped harmful records
  std::map<std::string, std::vector<Item>> eval;  // split name -> prompts
  std::map<std::string, std::vector<Item>> val;   // v2: val_harmful, val_benign, val_general
};

// The attack-shaped training wrappers of `safekey_pf` (seen families' style, no held-out text).
const std::vector<WrapperTemplate>& attack_training_templates();

// Eval splits in report order; "harmful_extra" / "benign_extra" exist only with extra templates.
const std::vector<std::string>& eval_split_names();
// True for splits of harmful prompts (harmfulness is measured), false for benign / general.
bool is_harmful_split(const std::string& split);

Datasets generate_world(const WorldConfig& cfg);

// The R1-Distill rendering of earlier turns folded into one user message, so that a record with a
// single `question` renders exactly as the multi-turn conversation does under the R1 template:
// "u1<｜Assistant｜>a1<｜end▁of▁sentence｜><｜User｜>u2".
std::string fold_turns_r1(const std::vector<Message>& messages);

// A training record in the reference format: question, response, source, category,
// summary_end_idx, next_sentence_end_idx (code points into the rebuilt response).
ordered_json record_json(const Item& item);
// An evaluation prompt with its truth (read back by item_from_json).
ordered_json prompt_json(const Item& item);
Item item_from_json(const json& j, const std::string& where);

// Writes DIR/stage1.json, DIR/stage2.json (JSON arrays of records), DIR/eval/<split>.jsonl,
// DIR/world.json (config, vocabulary, families, counts); v2 also DIR/stage2_pf.json and
// DIR/val/<split>.jsonl.
void write_world(const Datasets& d, const WorldConfig& cfg, const std::string& dir);

}  // namespace safekey::world
