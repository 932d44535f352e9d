// What a checkpoint remembers of its training data, so that `--resume` notices when the data changed
// under it: the number of tokenized examples, a hash of their contents (ids, labels, spans, safety
// label; not the file name), a hash of every epoch's example order, and for text records the
// tokenizer and the chat template that turned them into tokens. docs/training.md, "Resume guarantees".
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "safekey/data/example.h"
#include "safekey/util/json.h"

namespace safekey::train {

// 64-bit FNV-1a over what is fed to it, written as 16 hex digits.
class Fnv64 {
 public:
  void bytes(const void* p, size_t n);
  void i64(int64_t x) { bytes(&x, sizeof x); }
  void ids(const std::vector<int64_t>& v);  // the length, then every value
  std::string hex() const;

 private:
  uint64_t h_ = 14695981039346656037ULL;
};

struct DataFingerprint {
  int64_t examples = -1;      // -1: none stored (a checkpoint from before fingerprints)
  std::string content;        // every example's input ids, labels, query length, U and K spans, label
  std::string epoch_order;    // the example order of every epoch of the run
  std::string tokenizer;      // tokenizer.json of the model folder ("" = not used: pre-tokenized data)
  std::string chat_template;  // the chat template's text ("" = not used)

  bool empty() const { return examples < 0; }
  json to_json() const;  // null when empty
  static DataFingerprint from_json(const json& j);
};

// content: hashes the examples as the trainer sees them (after truncation).
std::string hash_examples(const std::vector<data::TokenizedExample>& examples);

// One line per difference ("dataset count: 120 -> 119 examples"); empty when nothing changed.
// A component stored as "" on either side (not used) is not compared.
std::vector<std::string> fingerprint_changes(const DataFingerprint& saved, const DataFingerprint& now);

}  // namespace safekey::train
