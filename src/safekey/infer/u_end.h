// Where U — the first sentence of a sequence's own generated thinking — ends, found while decoding
// the way training finds it (data/spans.cpp, data/annotate.cpp). The key-sentence guard (guard.h)
// scores U there; `safekey analyze probe --generated` (analyze/generated_u.h) reads the model's
// state there.
//
// The rule: the first sentence boundary of the generated text by the reference split (a '.' or '?'
// — not "..." — followed by whitespace), not after an initial or abbreviation
// (data::ends_in_abbreviation); U's tokens are the generated tokens before the first token that
// reaches past the sentence's last character. While decoding, the boundary is seen one token early:
// when the text so far ends in '.' or '?', that is a candidate U (the next token decides whether the
// sentence really ended — an unforced next token without whitespace, as in "3." "5", means it did
// not, and the search goes on). Differences from the annotator, on purpose: U is always one
// sentence (the annotator may join a restating second sentence), and a boundary is not undone when
// the next sentence starts lowercase. A leading "<think>" in the generated text is skipped. A
// sequence that writes "</think>" or `max_u_tokens` tokens before any boundary has no U.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace safekey::text {
class Tokenizer;
}

namespace safekey::infer {

// Where the first sentence of `text` ends: the byte offset just after its '.' or '?', or npos.
// `*at_end` is set when that offset is text.size() (not yet followed by whitespace). Stops at
// "</think>". A leading "<think>" and whitespace are skipped.
size_t first_sentence_end(std::string_view text, bool* at_end);

// Follows one sequence's generated tokens (with their last-layer hidden states) until U is known.
//
//   UFinder f(tokenizer, 256);
//   for each generated token t with hidden state h [H]:
//     if (auto u = f.push(t, h)) { use f.hidden_sum(u->tokens), f.hidden(u->tokens - 1); }
//     if (f.done()) { f.release(); break; }
//
// push() returns a candidate each time a sentence end newly appears; the last candidate before
// done() is U (a candidate with at_end is confirmed or replaced by the next token; when the
// sequence ends first, it stands).
class UFinder {
 public:
  struct Candidate {
    int64_t tokens = 0;   // U = the first `tokens` generated tokens (>= 1)
    bool at_end = false;  // the text ends at U's last character (the next token decides)
  };
  // The tokenizer must outlive the finder.
  UFinder(const text::Tokenizer& tok, int64_t max_u_tokens);

  std::optional<Candidate> push(int64_t token, const torch::Tensor& hidden);
  bool done() const { return done_; }
  void stop() { done_ = true; }  // end the search early (the guard forced its key)
  void release();                // free the kept states (after done)

  torch::Tensor hidden_sum(int64_t tokens) const;  // [H] float32: sum over the first `tokens`
  const torch::Tensor& hidden(int64_t j) const { return hidden_.at(static_cast<size_t>(j)); }
  const std::string& text() const { return text_; }  // the generated text so far (specials skipped)
  size_t text_end(int64_t tokens) const;  // length of the decoded text of the first `tokens` tokens

 private:
  const text::Tokenizer* tok_;
  int64_t max_u_tokens_;
  std::vector<int64_t> ids_;
  std::vector<torch::Tensor> hidden_;  // [H] float32 each
  std::vector<size_t> ends_;           // decoded length of ids_[0..j]
  std::string text_;
  size_t pending_end_ = std::string::npos;  // a candidate's end awaiting the next token
  bool done_ = false;
};

}  // namespace safekey::infer
