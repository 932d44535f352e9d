// The probe's features from the model's OWN understanding sentence: the model generates its reply
// to each record's prompt, and a decode observer (infer/engine.h hooks) keeps the last-layer hidden
// state at the last token of the first sentence it writes — U as the guard finds it while decoding
// (infer/u_end.h). safety_probe.h reads the same state teacher-forced, at the end of the record's
// reference U; the two answer different questions: is the safety label readable after the U the
// training data wrote, and after the U the model actually writes (what SafeKey's head and the guard
// see at inference).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "safekey/data/example.h"
#include "safekey/infer/generator.h"
#include "safekey/infer/u_end.h"
#include "safekey/model/decoder.h"

namespace safekey::text {
class Tokenizer;
}

namespace safekey::analyze {

// A decode observer that records every sequence's U. Sequence ids are the Generator's (one
// generate() call numbers its sequences by request index). After stop_with(token), a sequence is
// ended (the token is forced) once its U is known: the rest of the reply is not needed.
class GeneratedUStates : public infer::DecodeObserver {
 public:
  struct U {
    bool found = false;
    int64_t tokens = 0;     // generated tokens in U
    std::string text;       // U's text (the decoded generated text up to U's last character)
    torch::Tensor last;     // [H] float32, CPU: hidden state at U's last token
  };
  // The tokenizer must outlive the observer.
  GeneratedUStates(const text::Tokenizer& tok, int64_t max_u_tokens);
  void stop_with(int64_t token) { stop_token_ = token; }
  void on_step(infer::StepView& step, infer::Engine& engine) override;
  void on_finish(uint64_t id, infer::Completion& c) override;
  // The finished sequences' U, by sequence id.
  const std::map<uint64_t, U>& results() const { return done_; }
  void clear() { done_.clear(); }

 private:
  struct Row {
    explicit Row(infer::UFinder f) : finder(std::move(f)) {}
    infer::UFinder finder;
    U u;
  };
  const text::Tokenizer& tok_;
  int64_t max_u_tokens_, stop_token_ = -1;
  std::map<uint64_t, Row> rows_;
  std::map<uint64_t, U> done_;
};

struct GeneratedUOptions {
  int64_t max_u_tokens = 128;       // a reply whose first sentence is longer has no U (skipped)
  int64_t batch_size = 16;          // sequences decoded together
  double repetition_penalty = 1.0;  // greedy decoding; 1 = off
};

struct GeneratedUFeatures {
  torch::Tensor features;          // [N, H] float32: one row per record whose reply has a U
  std::vector<int> labels;         // [N] the records' safety labels
  std::vector<size_t> examples;    // [N] the record (index into the examples) of each row
  std::vector<std::string> texts;  // [N] the U the model wrote
  std::vector<int64_t> tokens;     // [N] its length in tokens
  int64_t skipped = 0;             // records whose reply has no U within max_u_tokens
};

// Greedy replies to each example's prompt (input_ids[0, query_len): template, user turn(s),
// generation prefix, and any prefill), and their U's end-of-U states.
GeneratedUFeatures generated_end_of_u_features(model::DecoderModel& model, const text::Tokenizer& tok,
                                               const std::vector<data::TokenizedExample>& examples,
                                               const GeneratedUOptions& opt);

}  // namespace safekey::analyze
