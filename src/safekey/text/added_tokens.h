// Added tokens of tokenizer.json ("added_tokens"): special and non-special tokens that are cut out
// of the text before the model sees it, matched leftmost-longest (as HF's Aho-Corasick
// LeftmostLongest), with the lstrip / rstrip / single_word flags. Tokens flagged normalized = false
// match the raw input; normalized = true ones match the normalized text.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "safekey/util/json.h"

namespace safekey::text {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = false;
  bool lstrip = false, rstrip = false, single_word = false, normalized = false;
};

// One piece of a text after cutting out added tokens: bytes [start, end), and the added token's
// id, or -1 for ordinary text.
struct AddedSplit {
  uint32_t start = 0, end = 0;
  int32_t id = -1;
};

// A byte trie over a set of token strings.
class TokenTrie {
 public:
  void add(const std::string& s, int32_t index);
  bool empty() const { return nodes_.size() <= 1; }
  // Longest token starting at text[i]: its index and length (0 when none).
  int32_t longest_at(std::string_view text, size_t i, size_t& len) const;
  bool may_start(unsigned char c) const { return first_[c]; }

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int32_t>> next;
    int32_t token = -1;
  };
  std::vector<Node> nodes_{1};
  bool first_[256] = {};
};

class AddedVocabulary {
 public:
  void add(const AddedToken& t, const std::string& normalized_content);
  const std::vector<AddedToken>& tokens() const { return tokens_; }
  bool has_normalized() const { return !norm_trie_.empty(); }
  // Splits text[start, end) on the raw (normalized = false) or the normalized tokens.
  void split(std::string_view text, uint32_t start, uint32_t end, bool normalized,
             std::vector<AddedSplit>& out) const;
  const AddedToken* by_id(int32_t id) const;
  const AddedToken* by_content(const std::string& content) const;

 private:
  std::vector<AddedToken> tokens_;
  std::unordered_map<int32_t, size_t> by_id_;
  std::unordered_map<std::string, size_t> by_content_;
  TokenTrie raw_trie_, norm_trie_;
};

}  // namespace safekey::text
