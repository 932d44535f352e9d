// Annotating U / K spans (SPEC.md section 2): where the opening restatement of the request (U)
// ends, and where the next sentence (K, the key sentence) ends. STAR-1 ships without them.
//
// A method is a small interface (SpanAnnotator); `rules` (the default, below) is one
// implementation. Other methods (an LLM judge) plug in through make_span_annotator().
//
// The rules, on the sentences of the thinking (split_sentences: the reference's regex split made
// quote- and abbreviation-aware; docs/data.md has the cue lists):
//   1. U starts with the first sentence. Which rule accepted it is recorded:
//        user_cue        it speaks of the user / request ("Okay, so the user is asking ...")
//        task_cue        it restates the task in the first person ("I need to explain ...")
//        question_overlap most of its content words come from the question
//        default_first   none of these: flagged `no_cue`
//      A generic opener ("I need to figure out how to respond to this request.") followed by a
//      restatement ("The user wants ...") takes both, also across one re-reading sentence
//      between them ("Let me read it again.") (rule meta_opener); alone it is flagged generic_opener.
//   2. U grows while the next sentence continues the restatement and carries no decision cue
//      (I need to, I should, let me, hmm, wait, first, ...): it names the user or the request
//      ("The user mentions ..."), or it starts with a weaker continuation cue ("They also want
//      ...") or shares most content words with the question and then also carries no judgement
//      word (policy, concern, harmful, illegal, ...); "+continuation" / "+overlap" is appended.
//   3. K is the sentence after U. With no sentence left in the thinking, K is the first sentence
//      of the answer (flag k_in_answer).
// Flags mark unclear cases: no_cue, u_long (U hit max_u_sentences), short_thinking (< 3
// sentences), k_in_answer, empty_thinking, long_u / long_k (over 600 / 400 characters, usually a
// segmentation failure), generic_opener, abbreviation_merged (U or K spans an abbreviation join).
// Offsets: summary_end_idx = end of U's last sentence (just after its '.'/'?'); K starts with the
// separating whitespace and ends just after its last character. Code points into the normalised
// response (response.h).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "safekey/data/records.h"

namespace safekey::data {

struct SpanAnnotation {
  bool ok = false;
  std::string error;                 // why there is no annotation (ok == false)
  int64_t summary_end_idx = -1;      // code points into Record::response
  int64_t next_sentence_end_idx = -1;
  std::string rule;
  std::vector<std::string> flags;
  int u_sentences = 0;               // sentences of the thinking in U
  int thinking_sentences = 0;
};

class SpanAnnotator {
 public:
  virtual ~SpanAnnotator() = default;
  virtual std::string name() const = 0;
  virtual SpanAnnotation annotate(const Record& record) = 0;
  // Methods that work in batches (remote judges) override this; the default loops.
  virtual std::vector<SpanAnnotation> annotate_all(const std::vector<Record>& records);
};

struct RuleOptions {
  int max_u_sentences = 4;         // U never takes more sentences than this (flag u_long)
  double overlap_threshold = 0.5;  // share of a sentence's content words found in the question
  int overlap_min_words = 3;       // ... and at least this many of them
  size_t long_u_chars = 600, long_k_chars = 400;
};

class RuleAnnotator : public SpanAnnotator {
 public:
  explicit RuleAnnotator(RuleOptions options = {}) : options_(options) {}
  std::string name() const override { return "rules"; }
  SpanAnnotation annotate(const Record& record) override;

 private:
  RuleOptions options_;
};

// The methods `safekey annotate --method` accepts.
std::vector<std::string> span_annotator_methods();
// Throws Error naming the accepted methods for an unknown one.
std::unique_ptr<SpanAnnotator> make_span_annotator(const std::string& method, const RuleOptions& options);

}  // namespace safekey::data
