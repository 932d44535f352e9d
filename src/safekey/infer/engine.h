// The continuous-batching decode loop behind Generator and the server.
//
// Every running sequence owns a slot of one preallocated KV cache (model/kv_cache.h):
// [max_batch_size slots, max_model_len positions] per layer, allocated as it is needed (doubling) or
// up front (EngineOptions::kv_capacity). Appending a token writes one column in place; rows of
// different lengths decode together without padding (each row's mask comes from its slot's length).
// Each step():
//   1. admits waiting sequences into free slots (the lowest first): prefills them together
//      (right-padded, in chunks of `prefill_chunk` tokens; a row's padding lies beyond its length and
//      is overwritten by its next tokens) and chooses their first token;
//   2. decodes one token for every running row ([B, 1] forward over slots 0..B-1);
//   3. retires rows that finished (eos / stop id / stop string / length / cancel): their slots are
//      free at once. The running rows are kept in consecutive slots 0..B-1 so that attention reads
//      views of the storage: when a hole would remain, the highest running row moves into it (one
//      row's keys copied, once). Nothing else ever copies a cache.
// Token choice is batched on the model's device (sampling.h choose_tokens): one host transfer per
// step, the chosen ids. A decode hook (DecodeHook) sees each step's hidden states and logits, may bias
// the logits and may queue forced tokens (force()).
// Not thread-safe: one thread drives it (the server's scheduler thread, or Generator::generate).
#pragma once
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "safekey/infer/request.h"
#include "safekey/infer/sampling.h"
#include "safekey/infer/text_stream.h"
#include "safekey/model/decoder.h"

namespace safekey::infer {

// A prepared sequence: prompt ids plus everything needed to finish it.
struct Sequence {
  uint64_t id = 0;                 // caller's handle, passed back in events
  std::vector<int64_t> prompt_ids;
  std::string prompt;              // the prompt text (reported back in the Completion)
  SamplingParams params;           // validated; max_new_tokens already capped by the context
  uint64_t seed = 0;
  std::atomic<bool>* cancel = nullptr;
};

class Engine;

// What a decode hook sees at each step, for the rows that chose a token in it.
struct StepView {
  std::vector<uint64_t> ids;          // the rows' sequence ids
  std::vector<int64_t> generated;     // tokens each row had generated before this step's choice
  std::vector<int64_t> fed;           // the generated token whose hidden state `hidden` holds
                                      //   (generated[i] - 1), or -1 in the prefill
  std::vector<int64_t> prompt_len;    // the rows' prompt lengths
  torch::Tensor hidden;               // [n, H] last-layer hidden state (after the final norm) at the
                                      //   row's last token fed to the model
  torch::Tensor logits;               // [n, V] float32 next-token logits (before the repetition
                                      //   penalty); add to it in place to bias this step's choice
  bool prefill = false;               // this step's rows were just admitted
  torch::Tensor prompt_hidden_sum;    // prefill only: [n, H] float32, the sum of each row's hidden
                                      //   states over its prompt positions [0, prompt_len)
};
// Called once per forward that chooses tokens (a prefill of fresh rows, or a decode step), before
// the choice. May call Engine::force().
using DecodeHook = std::function<void(StepView& step, Engine& engine)>;

struct EngineOptions {
  int64_t max_batch_size = 16;     // slots: sequences decoded together
  int64_t max_model_len = 0;       // positions per slot (prompt + generated); 0 = unbounded
  int64_t kv_capacity = 0;         // positions per slot allocated up front (0 = grow by doubling)
  int64_t prefill_chunk = 512;     // prompt tokens per prefill forward (bounds attention memory)
  std::vector<int64_t> eos_token_ids;
  DecodeFn decode;                 // ids -> text, special tokens skipped
  DecodeFn decode_with_special;    // ids -> text, special tokens kept (skip_special_tokens=false)
  DecodeHook hook;                 // optional
  // Optional: called when a sequence finishes, before its final event; may annotate the Completion
  // (the guard records its verdict there) and forget the sequence.
  std::function<void(uint64_t id, Completion& c)> on_finish;
};

// on_event(id, delta, done, completion): new final text for sequence `id`; on the last call done is
// true and completion points to the result (valid during the call only).
using EventFn = std::function<void(uint64_t id, const std::string& delta, bool done,
                                   const Completion* completion)>;

class Engine {
 public:
  Engine(model::DecoderModel model, EngineOptions opts, EventFn on_event);
  ~Engine();
  // Queues a sequence. Its prompt plus max_new_tokens must fit max_model_len (an error otherwise).
  void submit(Sequence s);
  // One scheduling iteration (admit + one decode step). Returns the number of tokens generated.
  int64_t step();
  bool idle() const;
  size_t waiting() const { return queue_.size(); }
  size_t running() const { return static_cast<size_t>(running_); }
  // Queues tokens that sequence `id` emits next instead of chosen ones (each still passes the eos /
  // stop / length checks). Returns false when no running or waiting sequence has that id.
  bool force(uint64_t id, const std::vector<int64_t>& tokens);
  const model::KVCache& cache() const { return cache_; }

 private:
  struct Row;
  void admit();
  void decode_step();
  // Chooses the next token of rows in slots [first, first + n) from logits [n, V] and hidden [n, H].
  // In a prefill, prompt_hidden_sum [n, H] is the sum of the rows' prompt hidden states (for the hook).
  void choose(torch::Tensor logits, const torch::Tensor& hidden, int64_t first, int64_t n,
              const torch::Tensor& prompt_hidden_sum = {});
  void retire_finished();
  bool accept_token(Row& r, int64_t tok);  // true when the row finished
  void finish(Row& r, const std::string& reason);
  torch::Device device() const;

  model::DecoderModel model_;
  EngineOptions opts_;
  EventFn on_event_;
  std::deque<std::unique_ptr<Row>> queue_;
  std::vector<std::unique_ptr<Row>> slots_;  // [max_batch_size]; running rows in slots 0..running_-1
  int64_t running_ = 0;
  model::KVCache cache_;
  torch::Tensor seen_;                       // [max_batch_size, V] bool: the penalty's ids per slot
  int64_t generated_ = 0;
};

}  // namespace safekey::infer
