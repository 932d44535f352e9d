// The continuous-batching decode loop behind Generator and the server.
//
// One running batch of rows. Each row holds one sequence; rows are left-padded to the batch's cache
// length, the key mask hides padding, and position ids are per row (the count of real tokens before
// each token), so a row's numbers do not depend on its neighbours. Each step():
//   1. admits waiting sequences while rows are free: prefills them together (left-padded, in chunks
//      of `prefill_chunk` tokens through the KV cache), samples their first token, and merges their
//      cache into the running one (the shorter side is left-padded);
//   2. decodes one token for every running row ([B, 1] forward with the cache);
//   3. retires rows that finished (eos / stop id / stop string / length / cancel) and drops them from
//      the cache (KVCache::select_rows), then trims padding columns no row needs.
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

#include "safekey/infer/generator.h"
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

struct EngineOptions {
  int64_t max_batch_size = 16;
  int64_t prefill_chunk = 512;     // prompt tokens per prefill forward (bounds attention memory)
  std::vector<int64_t> eos_token_ids;
  DecodeFn decode;                 // ids -> text, special tokens skipped
  DecodeFn decode_with_special;    // ids -> text, special tokens kept (skip_special_tokens=false)
};

// on_event(id, delta, done, completion): new final text for sequence `id`; on the last call done is
// true and completion points to the result (valid during the call only).
using EventFn = std::function<void(uint64_t id, const std::string& delta, bool done,
                                   const Completion* completion)>;

class Engine {
 public:
  Engine(model::DecoderModel model, EngineOptions opts, EventFn on_event);
  ~Engine();
  void submit(Sequence s);
  // One scheduling iteration (admit + one decode step). Returns the number of tokens generated.
  int64_t step();
  bool idle() const;
  size_t waiting() const { return queue_.size(); }
  size_t running() const;

 private:
  struct Row;
  void admit();
  void decode_step();
  // Samples from logits [n, V] for rows [first, first + n); returns tokens generated.
  int64_t sample_rows(const torch::Tensor& logits, size_t first);
  void retire_finished();
  bool accept_token(Row& r, int64_t tok);  // true when the row finished
  void finish(Row& r, const std::string& reason);

  model::DecoderModel model_;
  EngineOptions opts_;
  EventFn on_event_;
  std::deque<Sequence> queue_;
  std::vector<std::unique_ptr<Row>> rows_;  // running rows, in cache row order
  model::KVCache cache_;
  torch::Tensor key_mask_;                  // [B, S] int64/bool: 1 = real token
  int64_t generated_ = 0;
};

}  // namespace safekey::infer
