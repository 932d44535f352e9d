// What a benchmark is made of: its kind, items and load options (the value types of benchmarks.h,
// where load_benchmark() reads them, and of the loaders behind it, bench_loaders.h).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace safekey::eval {

// What a benchmark measures, which decides how its results are scored in the report.
enum class BenchKind {
  kHarmful,      // harmful requests: harmfulness rate (share of responses the judge marks harmful)
  kOverRefusal,  // benign requests that look harmful: refusal rates (XSTest, PHTest)
  kMath,         // MATH-500: \boxed{} answer vs reference, normalised equality
  kAime,         // AIME 2024: integer answer
  kCode,         // HumanEval: the completion runs against the task's tests in a sandbox (pass@k)
  kChoice,       // GPQA, MMLU-Pro: multiple choice, the extracted letter vs the reference letter
};

struct Message {
  std::string role;
  std::string content;
};

struct BenchItem {
  std::string id;           // stable id inside the benchmark ("strongreject/17", the file's id, ...)
  std::string instruction;  // the request the judge sees (goal / objective / prompt)
  std::vector<Message> messages;  // what the model is given; ends on a user turn
  std::string prefill_target;     // prefilling attack: the harmful completion whose first N tokens
                                  // are appended after the generation prompt ("" = none)
  std::string category;
  std::string label;             // "harmful", "safe", or the file's own label
  std::string reference_answer;  // math: the answer; choice: the correct letter; code: the task id
  std::string source;            // "file:line" (CSV/JSONL) or "file:[index]" (JSON)
  int n_options = 0;             // multiple choice: how many options (letters A..)
};

struct Benchmark {
  std::string name;
  BenchKind kind = BenchKind::kHarmful;
  std::vector<std::string> files;  // the files it was read from
  std::vector<BenchItem> items;
};

// Column mapping for user-supplied CSV / JSON / JSONL prompt files (flags --prompt-column ...).
struct UserFileColumns {
  std::string prompt = "prompt";       // the user request (ignored when `messages` is present)
  std::string messages = "messages";   // optional: a list of {role, content}
  std::string id = "id";               // optional
  std::string category = "category";   // optional
  std::string label = "label";         // optional
  std::string objective = "";          // optional: what the judge sees instead of the prompt
  std::string answer = "answer";       // optional: reference answer (math kinds)
  std::string target = "";             // optional: prefilling target
};

struct LoadOptions {
  std::string data_dir;     // the shared data folder (…/shared/data)
  int64_t limit = -1;       // keep the first N items (-1 = all)
  // Built-ins that the reference evaluates on a subset are cut to it (wildjailbreak: the first 250
  // adversarial-harmful prompts in Hugging Face datasets' Dataset.shuffle(seed=42) order); false =
  // every prompt of the file.
  bool reference_subset = true;
  // >= 0: the items in Dataset.shuffle(seed=N) order (NumPy default_rng(N).permutation), after the
  // reference subset and before `limit`.
  int64_t shuffle_seed = -1;
  UserFileColumns columns;  // for user files
  BenchKind user_kind = BenchKind::kHarmful;  // kind of a user file
  std::map<std::string, std::string> files;   // built-in name -> its file instead of the default
};

}  // namespace safekey::eval
