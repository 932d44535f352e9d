// `safekey annotate --method judge`: the LLM-judge variant of U/K span annotation (SPEC.md
// section 2). The thinking is split into sentences (data::split_sentences, as the rule method
// does); an OpenAI-compatible model gets the request and the numbered sentences and answers
// {"understanding_end_sentence": n}: U = sentences 1..n, K = sentence n+1 (or the first sentence of
// the answer when n is the last one), offsets with the same conventions as data::RuleAnnotator.
// A reply that does not parse, a number out of range, or a failed request (other than auth /
// unreachable endpoint, which stop the run) falls back to the rule method, flagged
// "judge_fallback". Every record is also annotated by the rules, and agreement statistics between
// the two methods are kept (agreement()).
#pragma once
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "safekey/data/annotate.h"
#include "safekey/eval/judges.h"
#include "safekey/net/chat_client.h"
#include "safekey/util/json.h"

namespace safekey::eval {

struct JudgeAnnotatorOptions {
  net::ChatClientOptions client;
  std::string model;             // --judge-model
  int concurrency = 4;
  std::string cache_dir;         // "" = no cache
  data::RuleOptions rules;       // the fallback / comparison method
  int max_listed_sentences = 12; // sentences shown to the judge (U is short; K follows it)
  bool progress = true;
};

// The prompt for one record (numbered sentences 1..listed).
std::string understanding_prompt(const std::string& question, const std::vector<std::string>& sentences);
// n from a reply: parse_understanding_reply (judges.h).

class JudgeAnnotator : public data::SpanAnnotator {
 public:
  explicit JudgeAnnotator(JudgeAnnotatorOptions opts);
  std::string name() const override { return "judge"; }
  data::SpanAnnotation annotate(const data::Record& record) override;
  std::vector<data::SpanAnnotation> annotate_all(const std::vector<data::Record>& records) override;
  // {records, judged, fallback: {unparsed, out_of_range, error}, compared, agree, agreement_rate,
  //  mean_abs_diff_sentences, diff_histogram: {"-1": n, "0": n, ...}, u_sentences_judge_mean,
  //  u_sentences_rules_mean}
  json agreement() const;

 private:
  JudgeAnnotatorOptions opts_;
  mutable std::mutex mu_;
  json stats_;
};

// Annotation with U = the first `u_sentences` sentences of the thinking (1-based count), K = the
// next sentence; same offsets and conventions as the rule method. ok == false with an error when
// the record has no think block or n is out of range.
data::SpanAnnotation annotation_for_u_sentences(const data::Record& record, int u_sentences);

}  // namespace safekey::eval
