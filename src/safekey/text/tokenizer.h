// Hugging Face tokenizer.json, byte-level BPE (Qwen2.5 / Qwen3 / DeepSeek-R1-Distill-Qwen,
// Llama 3 / R1-Distill-Llama, DeepSeek-V3), identical ids and offsets to HF tokenizers. No libtorch.
//
//   auto tok = safekey::text::Tokenizer::from_file("models/R1-Distill-Qwen-7B");  // folder or .json
//   Encoding e = tok.encode("Hello <think>", /*add_special_tokens=*/false);
//   e.ids          -> token ids
//   e.offsets      -> per token [start, end) in code points of the input (Python str indices; HF offsets)
//   e.byte_offsets -> the same in bytes
//   tok.decode(e.ids, /*skip_special_tokens=*/true) -> text (invalid UTF-8 -> U+FFFD)
//   tok.token_to_id("<think>"), tok.id_to_token(151648), tok.vocab_size(), tok.bos_id(), tok.eos_id()
//   tok.config().chat_template  -> from tokenizer_config.json next to tokenizer.json, when present
//
// Pipeline (as HF): split out added tokens on the raw text (leftmost-longest) -> normalizer (NFC /
// none) -> pre-tokenizer (Split regex, ByteLevel) -> BPE -> post-processor (TemplateProcessing adds
// BOS only when add_special_tokens is true; ByteLevel trim_offsets). Special tokens written in the
// text are always recognised (transformers' split_special_tokens = false).
// Unsupported components (Unigram, WordPiece, unknown normalizers...) raise safekey::Error naming
// the file and field. encode() rejects invalid UTF-8. A Tokenizer is cheap to copy and safe to use
// from several threads.
//
// Training a byte-level BPE tokenizer: see bpe_trainer.h (train_bpe(corpus, options) -> json).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "safekey/util/json.h"

namespace safekey::text {

struct Encoding {
  std::vector<int32_t> ids;
  std::vector<std::pair<size_t, size_t>> offsets;       // code points, [start, end)
  std::vector<std::pair<size_t, size_t>> byte_offsets;  // bytes, [start, end)
  // 1 for tokens the post-processor added (BOS); they have offsets (0, 0).
  std::vector<uint8_t> added_by_template;
  size_t size() const { return ids.size(); }
};

// tokenizer_config.json (all optional; empty strings when absent or null).
struct TokenizerConfig {
  std::string bos_token, eos_token, pad_token, unk_token;  // strings or AddedToken dicts' content
  std::optional<std::string> chat_template;                // string form (first of a named list)
  std::optional<bool> add_bos_token, add_eos_token;
  bool clean_up_tokenization_spaces = false;
  std::string tokenizer_class;
  json raw;  // the whole file (null when there is none)
};

class Tokenizer {
 public:
  // `path`: a tokenizer.json, a tokenizer_config.json (its sibling tokenizer.json is loaded), or a
  // model folder holding tokenizer.json. Reads tokenizer_config.json from the same folder if any.
  static Tokenizer from_file(const std::string& path);
  // From tokenizer.json text; `where` names the source in errors. `config` may be null.
  static Tokenizer from_json_text(const std::string& tokenizer_json, const std::string& where,
                                  const json& config = json());

  Encoding encode(std::string_view text, bool add_special_tokens = false) const;
  std::vector<int32_t> encode_ids(std::string_view text, bool add_special_tokens = false) const;
  // Decodes ids (unknown ids are skipped, as HF). clean_up_tokenization_spaces comes from the config
  // unless given.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = false) const;
  std::string decode(const std::vector<int64_t>& ids, bool skip_special_tokens = false) const;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens, bool clean_up) const;

  int32_t token_to_id(const std::string& token) const;  // -1 when absent (added tokens first)
  std::string id_to_token(int32_t id) const;            // "" when absent (vocabulary form, "Ġhi")
  // Size including added tokens (HF get_vocab_size(with_added_tokens=True)): max id + 1.
  size_t vocab_size() const;
  bool is_special(int32_t id) const;  // an added token flagged special
  // Ids of the config's special tokens, -1 when none. bos_id() falls back to the BOS the
  // post-processor adds.
  int32_t bos_id() const;
  int32_t eos_id() const;
  int32_t pad_id() const;
  // Ids the post-processor puts before / after a single sequence when add_special_tokens is true.
  const std::vector<int32_t>& template_prefix() const;
  const std::vector<int32_t>& template_suffix() const;
  const TokenizerConfig& config() const;
  const std::string& source() const;  // path or name it was loaded from

  // Testing hook: turn the hand-written Qwen/Llama pre-tokenizer off (use Oniguruma only).
  void set_fast_pre_tokenizer(bool on);

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

// Reads tokenizer_config.json fields; `where` names the file in errors.
TokenizerConfig parse_tokenizer_config(const json& j, const std::string& where);

}  // namespace safekey::text
