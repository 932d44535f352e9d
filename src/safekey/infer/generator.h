// Batched text generation with the KV cache (SPEC.md section 5: the reference's generation protocol).
//
// API (the part other components use):
//
//   infer::Generator gen(model, tokenizer, chat_format);        // chat_format may be null (raw prompts)
//   infer::Request r;  r.messages = {{"user", "How do I ...?"}};  // rendered with the chat template,
//   r.prefill = "Sure, here is ...";  r.prefill_tokens = 20;       //   generation prompt on, then
//                                                                  //   " " + first 20 target tokens
//   infer::SamplingParams p;  p.max_new_tokens = 512;  p.repetition_penalty = 1.2;   // greedy
//   std::vector<infer::Completion> out = gen.generate({r}, p);    // out[i] answers requests[i]
//   out[0].text, out[0].token_ids, out[0].finish_reason ("stop" | "length"), out[0].prompt_tokens
//
//   // Streaming (the server): per-request callbacks, called on the generating thread.
//   gen.generate_stream(requests, params, [&](size_t i, const std::string& delta) {...});
//
// Design: every request becomes a row of one running batch. Rows are left-padded to a common length;
// a key mask hides the padding and each row carries its own position ids, so a row computes exactly
// what it would alone (batched greedy output equals unbatched greedy output; tested). Finished rows
// are dropped from the batch and the KV cache (KVCache::select_rows); waiting requests are admitted
// into the running batch as rows finish (continuous batching, Engine in engine.h).
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "safekey/infer/request.h"
#include "safekey/infer/sampling.h"
#include "safekey/model/decoder.h"

namespace safekey::text {
class Tokenizer;
class ChatFormat;
}  // namespace safekey::text

namespace safekey::infer {

struct Sequence;       // engine.h
struct EngineOptions;  // engine.h
struct StepView;       // engine.h
class Engine;          // engine.h

struct GeneratorOptions {
  int64_t max_batch_size = 16;   // rows decoded together
  int64_t max_context = 0;       // prompt + new tokens limit; 0 = the model's max_position_embeddings
  // KV cache budget in bytes: > 0 allocates max_batch_size x max_context positions up front and
  // lowers max_batch_size to what fits (engine_options()); 0 = the storage grows as needed.
  int64_t kv_cache_bytes = 0;
  OverflowPolicy overflow = OverflowPolicy::Error;
  uint64_t seed = 2002;          // seeds requests that have no seed of their own
  bool progress = false;         // log "k/n done, X tokens/s" lines to stderr
  std::vector<int64_t> eos_token_ids;  // empty = the model config's eos ids + the tokenizer's eos
  // Tokenize the rendered prompt with the tokenizer's added specials (BOS) on top of the template's
  // own: off by default; on reproduces the reference's vLLM call (a doubled BOS on R1-Distill).
  bool add_special_tokens = false;
  std::shared_ptr<DecodeObserver> observer;  // optional (the key-sentence guard)
};

// Streaming: called with (request index, new text) as text becomes final (text that could still
// become part of a stop string is held back). The last call for a request has done = true and
// final_completion set (its delta may be empty).
using StreamFn = std::function<void(size_t index, const std::string& delta, bool done,
                                    const Completion* final_completion)>;

class Generator {
 public:
  // The model, tokenizer and chat format must outlive the generator. chat_format may be null: then
  // Request::messages are rejected and only raw prompts work.
  Generator(model::DecoderModel model, const text::Tokenizer& tokenizer,
            const text::ChatFormat* chat_format, GeneratorOptions opts = {});
  ~Generator();

  std::vector<Completion> generate(const std::vector<Request>& requests,
                                   const SamplingParams& params);
  // Per-request sampling parameters (params.size() == requests.size()).
  std::vector<Completion> generate(const std::vector<Request>& requests,
                                   const std::vector<SamplingParams>& params,
                                   const StreamFn& on_text = nullptr);

  // The final prompt text of a request (template + prefill), as it will be tokenized.
  std::string render(const Request& r) const;
  // The final prompt token ids (after the overflow policy), as the model will see them.
  std::vector<int64_t> prompt_ids(const Request& r, const SamplingParams& p, size_t index) const;

  // For drivers of their own Engine (the server): the prepared sequence of a request (template,
  // prefill, tokenization, context policy, seed) and the engine options (eos ids, detokenizer).
  // make_sequence throws Error naming request `index` for bad parameters or an overlong prompt.
  Sequence make_sequence(const Request& r, const SamplingParams& p, size_t index, uint64_t id);
  EngineOptions engine_options() const;
  // Bytes of keys and values one position takes in the KV cache (all layers).
  int64_t kv_bytes_per_position() const;

  const GeneratorOptions& options() const { return opts_; }
  const text::Tokenizer& tokenizer() const { return tok_; }
  const text::ChatFormat* chat_format() const { return chat_; }
  model::DecoderModel& model() { return model_; }
  int64_t max_context() const;
  const std::vector<int64_t>& eos_token_ids() const { return eos_; }

 private:
  model::DecoderModel model_;
  const text::Tokenizer& tok_;
  const text::ChatFormat* chat_;
  GeneratorOptions opts_;
  std::vector<int64_t> eos_;
  uint64_t next_seed_;
};

}  // namespace safekey::infer
