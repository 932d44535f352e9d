// Prompt building for generation (SPEC.md section 5, the reference's gen.py `input_proc`):
//   text = chat_template(messages, add_generation_prompt=True)
//   with a prefilling target: text += " " + decode(first N tokens of tokenize(target), skip specials)
// The whole text is then tokenized at once (so the join " " + prefill re-tokenizes as the reference's
// vLLM call does). Special tokens are not added on top of the template (it already writes BOS);
// GeneratorOptions::add_special_tokens reproduces the reference's vLLM call, which adds a second BOS
// for the R1-Distill tokenizers.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "safekey/infer/request.h"
#include "safekey/infer/sampling.h"
#include "safekey/model/config.h"

namespace safekey::text {
class Tokenizer;
class ChatFormat;
}  // namespace safekey::text

namespace safekey::infer {

// The final prompt text of a request (template + prefill; or the raw prompt + prefill).
std::string render_prompt(const Request& r, const text::Tokenizer& tok, const text::ChatFormat* chat);
// The reference's prefill text: decode(first n tokens of target), special tokens skipped; n < 0 = all.
std::string prefill_text(const std::string& target, int64_t n, const text::Tokenizer& tok);

std::vector<int64_t> encode_text(const text::Tokenizer& tok, const std::string& text,
                                 bool add_special_tokens = false);
std::string decode_ids(const text::Tokenizer& tok, const std::vector<int64_t>& ids,
                       bool skip_special_tokens);

// Applies the context policy to prompt `ids` of request `index`: a prompt must leave room for at
// least one new token (prompt_len < max_context). OverflowPolicy::Error throws naming the request
// and both lengths; TruncateLeft keeps the last max(1, max_context - max_new_tokens) tokens.
std::vector<int64_t> fit_context(std::vector<int64_t> ids, const SamplingParams& p,
                                 int64_t max_context, OverflowPolicy policy, size_t index);

// The stop ids used by default: the model config's eos ids, the tokenizer's eos, and the eos ids of
// generation_config.json in `model_dir` (when given and present), without duplicates.
std::vector<int64_t> default_eos_ids(const model::ModelConfig& cfg, const text::Tokenizer& tok,
                                     const std::string& model_dir = "");

}  // namespace safekey::infer
