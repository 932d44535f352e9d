// The key-sentence guard: SafeKey's safety head used at inference time.
//
// Training teaches the Dual-Path Safety Head (model/safety_head.h) to tell, from the model's own
// hidden states over the understanding sentence U (and over query + U), whether the request is
// harmful. The guard applies it while decoding: when U ends — the first sentence of the generated
// thinking — it pools the hidden states exactly as training does (C_head over U's tokens, ctx_head
// over [0, end of U)), and if the unsafe score is >= threshold it forces the tokens of a safety key
// sentence (the "aha" sentence, e.g. the K of the training refusals); generation continues from
// there. Below the threshold nothing changes.
//
// Where U ends, as training finds it (data/spans.cpp, data/annotate.cpp): the first sentence
// boundary of the generated text by the reference split (a '.' or '?' — not "..." — followed by
// whitespace), not after an initial or abbreviation (data::ends_in_abbreviation); U's tokens are
// the generated tokens before the first token that reaches past the sentence's last character.
// At inference the boundary is decided one token early: when the text so far ends in '.' or '?',
// U is scored then (the next token decides whether the sentence really ended — a forced key starts
// with the separator, so it does end; an unforced next token without whitespace, as in "3." "5",
// means it did not, and the guard keeps looking). Differences from the annotator, on purpose: U is
// always one sentence (the annotator may join a restating second sentence), and a boundary is not
// undone when the next sentence starts lowercase. A leading "<think>" in the generated text (chat
// templates that leave it to the model) is skipped. The prompt may end in a prefill (an attacker's
// start of the reply): U is then the model's first own sentence after it, and ctx_head pools the
// whole prompt, prefill included; in a multi-turn conversation U is the first sentence of the last
// assistant turn. A sequence that writes "</think>" or `max_u_tokens` tokens before any boundary is
// left alone.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "safekey/infer/engine.h"
#include "safekey/infer/generator.h"
#include "safekey/model/safety_head.h"

namespace safekey::text {
class Tokenizer;
}

namespace safekey::infer {

enum class GuardScore { U, XU, Mean, Max };  // which probability is compared with the threshold
GuardScore parse_guard_score(const std::string& s);  // "u" | "xu" | "mean" | "max"
const char* guard_score_name(GuardScore s);

struct GuardOptions {
  std::string head_path;         // safety_head.safetensors, or a folder (checkpoint) holding one
  double threshold = 0.5;        // τ: fire when score >= τ
  GuardScore score = GuardScore::Mean;
  std::string key_sentence;      // the forced text (required)
  std::string separator = " ";   // put before the key when the text does not end in whitespace
  int64_t max_u_tokens = 256;    // give up on a first sentence longer than this
  bool observe_only = false;     // score and record, never force (picking τ on validation data: the
                                 //   score does not depend on τ, since nothing changes before U ends)
};

// Where the first sentence of `text` ends: the byte offset just after its '.' or '?', or npos.
// `*at_end` is set when that offset is text.size() (not yet followed by whitespace). Stops at
// "</think>". A leading "<think>" and whitespace are skipped.
size_t first_sentence_end(std::string_view text, bool* at_end);

class KeySentenceGuard : public DecodeObserver {
 public:
  // hidden_size: the model's (checked against the head file). The tokenizer must outlive the guard.
  KeySentenceGuard(GuardOptions opts, const text::Tokenizer& tok, int64_t hidden_size);
  void on_step(StepView& step, Engine& engine) override;
  void on_finish(uint64_t id, Completion& c) override;

  const GuardOptions& options() const { return opts_; }
  // The head's score for pooled states (what on_step compares with the threshold).
  double score(const model::HeadScores& s) const;
  model::SafetyHead& head() { return head_; }

 private:
  struct Row {
    torch::Tensor prompt_sum;            // [H] float32
    int64_t prompt_len = 0;
    std::vector<int64_t> ids;            // generated tokens whose hidden states are known
    std::vector<torch::Tensor> hidden;   // [H] float32 each
    std::vector<size_t> ends;            // decoded length of ids[0..j]
    std::string text;                    // decoded ids (what the sentence search reads)
    size_t pending_end = std::string::npos;  // a scored end awaiting the next token
    bool done = false;
    GuardVerdict verdict;
  };
  void watch(Row& r, uint64_t id, Engine& engine);

  GuardOptions opts_;
  const text::Tokenizer& tok_;
  model::SafetyHead head_;
  std::vector<int64_t> key_ids_, key_ids_sep_;  // the key without / with the separator
  std::map<uint64_t, Row> rows_;
};

}  // namespace safekey::infer
