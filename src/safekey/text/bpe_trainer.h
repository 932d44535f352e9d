// Byte-level BPE training: learns merges from a corpus and writes a tokenizer.json that HF
// tokenizers (and text::Tokenizer) load and encode identically. The vocabulary is laid out as
// Qwen's: the 256 byte tokens in GPT-2 bytes_to_unicode order (ids 0..255), then one token per
// merge in learning order, then the added tokens in the order given.
//
//   text::TrainOptions opt;
//   opt.vocab_size = 4096;
//   opt.special_tokens = {"<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"};   // special: true
//   opt.added_tokens = {"<｜User｜>", "<｜Assistant｜>", "<think>", "</think>"};  // special: false
//   opt.bos_token = "<｜begin▁of▁sentence｜>";  // optional TemplateProcessing that prepends BOS
//   safekey::ordered_json tj = text::train_bpe(corpus_strings, opt);
//   safekey::write_file_atomic("tokenizer.json", tj.dump(2));
//   auto tok = text::Tokenizer::from_json_text(tj.dump(), "trained");
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "safekey/util/json.h"

namespace safekey::text {

struct TrainOptions {
  size_t vocab_size = 1024;                 // bytes + merges + added tokens
  std::vector<std::string> special_tokens;  // added tokens with special = true
  std::vector<std::string> added_tokens;    // added tokens with special = false (e.g. <think>)
  std::string pattern = "qwen";             // "qwen", "llama3" or an Oniguruma regex
  int64_t min_frequency = 2;                // pairs seen fewer times are never merged
  bool nfc = true;                          // write (and train under) an NFC normalizer
  std::string bos_token;                    // non-empty: post-processor prepends it (add_special_tokens)
  // Called now and then with (merges done, merges wanted).
  std::function<void(size_t, size_t)> progress;
};

// Trains on `corpus` (each string one document; must be valid UTF-8). Added tokens written in the
// corpus are cut out first, so they never take part in merges. Throws Error on bad options.
ordered_json train_bpe(const std::vector<std::string>& corpus, const TrainOptions& options);

// Resolves "qwen" / "llama3" to the exact regex; other strings are returned as is.
std::string resolve_pattern(const std::string& pattern);

}  // namespace safekey::text
