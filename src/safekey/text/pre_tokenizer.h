// Pre-tokenizers of tokenizer.json ("pre_tokenizer"): Split (Oniguruma regex or literal string,
// all five split behaviours, invert), ByteLevel (add_prefix_space, use_regex) and Sequence.
// A pre-tokenizer cuts a normalized text into pieces (byte ranges); BPE then runs on each piece.
// The exact Qwen2/Qwen3 and Llama-3 Split regexes also have a hand-written matcher
// (pre_tokenizer_fast.cpp) that the tests check against the Oniguruma path.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "safekey/util/json.h"

namespace safekey::text {

// One piece of the normalized text: bytes [start, end), optionally preceded by an inserted
// space (ByteLevel add_prefix_space); the space maps to the piece's first character.
struct Piece {
  uint32_t start = 0, end = 0;
  bool prefix_space = false;
};

// A compiled Oniguruma regex (UTF-8, the Oniguruma syntax the onig crate uses by default).
class Regex {
 public:
  explicit Regex(const std::string& pattern, const std::string& where);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  // Appends the non-overlapping matches in text[start, end) as absolute byte ranges.
  void find_all(std::string_view text, uint32_t start, uint32_t end,
                std::vector<std::pair<uint32_t, uint32_t>>& out) const;

 private:
  void* re_ = nullptr;  // OnigRegex
};

// Hand-written matchers for the two byte-level BPE regexes in use. `digits_max` is 1 for
// Qwen2/Qwen3 (\p{N}) and 3 for Llama 3 (\p{N}{1,3}). Same results as the regex.
void split_qwen_llama(std::string_view text, uint32_t start, uint32_t end, int digits_max,
                      std::vector<std::pair<uint32_t, uint32_t>>& out);
// The exact pattern strings the fast path recognises.
extern const char* const kQwenPattern;
extern const char* const kLlama3Pattern;
// GPT-2's pattern, used by ByteLevel with use_regex = true.
extern const char* const kGpt2Pattern;

class PreTokenizer {
 public:
  // Parses tokenizer.json "pre_tokenizer". Unknown types are an error naming `where`.
  static std::unique_ptr<PreTokenizer> from_json(const json& j, const std::string& where);
  ~PreTokenizer();
  // Replaces `pieces` (ranges of `text`) by the pieces after this pre-tokenizer.
  void split(std::string_view text, std::vector<Piece>& pieces) const;
  // True when a ByteLevel step is present (the vocabulary is then in GPT-2 byte-level form).
  bool byte_level() const;
  // Disables the hand-written regex path (tests compare both).
  void set_fast_path(bool on);

  enum class Behavior { kIsolated, kRemoved, kMergedWithPrevious, kMergedWithNext, kContiguous };
  struct Step {
    enum class Type { kSplit, kByteLevel } type = Type::kSplit;
    std::unique_ptr<Regex> regex;  // Split regex (literal strings are escaped)
    int fast_digits = 0;           // 1 or 3 when the pattern is one of the fast-path ones
    bool use_fast = false;
    Behavior behavior = Behavior::kIsolated;
    bool invert = false;
    bool add_prefix_space = false;  // ByteLevel
  };

 private:
  std::vector<Step> steps_;
};

}  // namespace safekey::text
