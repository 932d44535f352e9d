// What generation takes and gives, shared by the Generator (generator.h), the Engine (engine.h) and
// prompt rendering (prompt.h): a request (messages, raw prompt or ids; a prefill), a completion, the
// observer interface of the decode hooks, and the prompt-overflow policy. Value types only: the
// components that use them include this header, not each other.
#pragma once
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace safekey::infer {

struct StepView;  // engine.h
class Engine;     // engine.h

struct Message {
  std::string role;  // "system" | "user" | "assistant"
  std::string content;
};

// One prompt. The first non-empty of `prompt_ids`, `prompt`, `messages` is used.
struct Request {
  std::vector<Message> messages;    // rendered with the chat template, add_generation_prompt = true
  std::string prompt;               // raw text, tokenized as is (no template, no added specials)
  std::vector<int64_t> prompt_ids;  // used as is
  // Prefilling attack (reference gen.py): after the rendered prompt append " " + the decoded first
  // `prefill_tokens` tokens of `prefill` (all of them when prefill_tokens < 0). Ignored when empty.
  std::string prefill;
  int64_t prefill_tokens = -1;
  std::atomic<bool>* cancel = nullptr;  // set to true to stop this request (finish_reason "abort")
};

// What the key-sentence guard (guard.h) did with one sequence.
struct GuardVerdict {
  bool checked = false;   // U ended and the safety head scored it
  bool fired = false;     // score >= threshold: the key sentence was forced after U
  double p_u = 0, p_xu = 0, score = 0;  // the head's unsafe probabilities and the score compared
  int64_t u_tokens = 0;   // generated tokens in U
};

struct Completion {
  std::string text;                // generated text (without the prompt/prefill), cut at a stop string
  std::vector<int64_t> token_ids;  // generated ids, including a final eos/stop id when one ended it
  std::string finish_reason;       // "stop" (eos, stop id or stop string), "length", "abort"
  std::string stop_string;         // the stop string that matched, if any
  int64_t prompt_tokens = 0;       // tokens in the final prompt (template + prefill)
  std::string prompt;              // the final prompt text (empty for prompt_ids requests)
  GuardVerdict guard;              // with a guard (GeneratorOptions::observer)
};

// Watches decoding (the key-sentence guard, guard.h; the generated-U probe, analyze/generated_u.h):
// Generator::engine_options() wires it into every engine the generator (or the server) drives.
// Called on the engine's thread. Generator::generate numbers one call's sequences by request index.
class DecodeObserver {
 public:
  virtual ~DecodeObserver() = default;
  virtual void on_step(StepView& step, Engine& engine) = 0;  // before each step's token choice
  virtual void on_finish(uint64_t id, Completion& c) = 0;    // before the sequence's final event
};

// What to do with a prompt that does not fit the context (max_position_embeddings or --max-context):
enum class OverflowPolicy {
  Error,     // throw Error naming the request index and both lengths (default)
  TruncateLeft,  // keep the last tokens of the prompt (what the trainer does with long inputs)
};

}  // namespace safekey::infer
