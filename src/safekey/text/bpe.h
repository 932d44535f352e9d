// The BPE model of tokenizer.json ("model": {"type": "BPE"}), byte-level only: vocab, merges in
// both JSON forms ("a b" strings or ["a","b"] pairs), ignore_merges, and a word cache. Works on raw
// bytes: vocabulary strings are mapped back through the GPT-2 byte alphabet at load time.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "safekey/util/json.h"

namespace safekey::text {

class Bpe {
 public:
  // Parses the "model" object. `where` names the file for errors. Unigram/WordPiece/WordLevel and
  // BPE options we do not implement (dropout, byte_fallback, subword prefixes) are errors.
  static std::unique_ptr<Bpe> from_json(const json& model, const std::string& where);

  // Appends the ids of one pre-token (raw bytes) to `ids`, and each token's byte length to `lens`.
  void encode_word(std::string_view word, std::vector<int32_t>& ids, std::vector<uint32_t>* lens) const;

  size_t vocab_size() const { return id_to_token_.size(); }
  // Vocabulary string as in tokenizer.json (byte-level form, "Ġhello"); "" for unknown ids.
  const std::string& id_to_token(int32_t id) const;
  int32_t token_to_id(const std::string& token) const;  // -1 when absent
  // Raw bytes of a token, (false) when the vocabulary string is not byte-level.
  bool token_bytes(int32_t id, std::string& out) const;
  uint32_t token_byte_len(int32_t id) const { return byte_len_[static_cast<size_t>(id)]; }
  bool ignore_merges() const { return ignore_merges_; }
  size_t merges_size() const { return merge_count_; }

 private:
  struct MergeSlot {
    uint64_t key = ~0ull;
    int32_t rank = 0, id = 0;
  };
  bool find_merge(int32_t a, int32_t b, int32_t& rank, int32_t& id) const {
    uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
    size_t mask = merges_.size() - 1;
    size_t h = (key * 0x9E3779B97F4A7C15ull) >> 20;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
      const MergeSlot& s = merges_[i];
      if (s.key == key) {
        rank = s.rank;
        id = s.id;
        return true;
      }
      if (s.key == ~0ull) return false;
    }
  }
  void add_merge(int32_t a, int32_t b, int32_t rank, int32_t id);
  void bpe(std::string_view word, std::vector<int32_t>& out) const;

  std::vector<std::string> id_to_token_;                // tokenizer.json strings
  std::unordered_map<std::string, int32_t> vocab_;      // tokenizer.json string -> id
  std::unordered_map<std::string, int32_t> raw_vocab_;  // raw bytes -> id
  std::vector<uint32_t> byte_len_;                      // raw byte length per id (0 = not byte-level)
  int32_t byte_id_[256];
  std::vector<MergeSlot> merges_;
  size_t merge_count_ = 0;
  bool ignore_merges_ = false;

  // Word cache, sharded by hash so concurrent encoders rarely contend.
  static constexpr size_t kShards = 16, kShardCapacity = 1 << 14, kMaxCachedWord = 64;
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, std::vector<int32_t>> map;
  };
  mutable std::unique_ptr<Shard[]> cache_{new Shard[kShards]};
};

}  // namespace safekey::text
