// Decoders of tokenizer.json ("decoder"): ByteLevel (and Sequence of it), plus transformers'
// clean_up_tokenization (applied when tokenizer_config.json says clean_up_tokenization_spaces).
#pragma once
#include <string>
#include <vector>

#include "safekey/util/json.h"

namespace safekey::text {

class Decoder {
 public:
  // Parses "decoder" (null, ByteLevel, Sequence). Unknown types are an error naming `where`.
  static Decoder from_json(const json& j, const std::string& where);
  // Joins token strings: ByteLevel maps each token's characters back to bytes (a token with a
  // character outside the byte alphabet is taken as its UTF-8 text), then invalid UTF-8 -> U+FFFD.
  std::string decode(const std::vector<const std::string*>& tokens) const;
  bool byte_level() const { return byte_level_; }

 private:
  bool byte_level_ = false;
};

// transformers' PreTrainedTokenizerBase.clean_up_tokenization: " ." -> "." and friends.
std::string clean_up_tokenization(std::string s);

}  // namespace safekey::text
