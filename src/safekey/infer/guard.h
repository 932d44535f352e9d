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
// Where U ends, as training finds it, and how that is decided while decoding: infer/u_end.h. The
// prompt may end in a prefill (an attacker's start of the reply): U is then the model's first own
// sentence after it, and ctx_head pools the whole prompt, prefill included; in a multi-turn
// conversation U is the first sentence of the last assistant turn. A forced key starts with the
// separator when U's text is not yet followed by whitespace, so the sentence does end there. A
// sequence without a U (infer::UFinder) is left alone.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "safekey/infer/engine.h"
#include "safekey/infer/generator.h"
#include "safekey/infer/u_end.h"
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
    explicit Row(UFinder f) : u(std::move(f)) {}
    UFinder u;                           // the generated tokens until U is known
    torch::Tensor prompt_sum;            // [H] float32
    int64_t prompt_len = 0;
    GuardVerdict verdict;
  };
  void check(Row& r, const UFinder::Candidate& u, uint64_t id, Engine& engine);

  GuardOptions opts_;
  const text::Tokenizer& tok_;
  model::SafetyHead head_;
  std::vector<int64_t> key_ids_, key_ids_sep_;  // the key without / with the separator
  std::map<uint64_t, Row> rows_;
};

}  // namespace safekey::infer
