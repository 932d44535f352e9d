// libFuzzer target for prompt files (`safekey generate --prompts`, infer/prompt_file.cpp): the input
// is the file's content, read once as "p.json" (a JSON list when it starts with '[') and once as
// "p.jsonl". Bad input must be a safekey::Error; every item read must be usable: non-empty
// instruction, a conversation of known roles ending on a user turn.
#include <cstdint>
#include <cstdlib>

// The parser's own source, compiled here: it is part of safekey_torch, which the fuzz build does not
// make (it needs libtorch's headers only).
#include "safekey/infer/prompt_file.cpp"
#include "safekey/util/error.h"
#include "fuzz_input_file.h"

using namespace safekey;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (const char* suffix : {".json", ".jsonl"}) {
    const std::string path = fuzz::input_file(data, size, suffix);
    try {
      for (const auto& item : infer::read_prompt_file(path)) {
        if (item.instruction.empty() || item.messages.empty() || item.messages.back().role != "user" ||
            item.id.empty())
          std::abort();
        for (const auto& m : item.messages)
          if (m.role != "system" && m.role != "user" && m.role != "assistant") std::abort();
      }
    } catch (const Error&) {
    }
  }
  return 0;
}
