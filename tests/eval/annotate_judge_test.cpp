// `annotate --method judge`: prompt/reply handling, offsets, fallback to the rules, and agreement
// statistics, against the loopback judge server (tests/net/judge_server.h).
#include "safekey/eval/annotate_judge.h"

#include <gtest/gtest.h>

#include "net/judge_server.h"
#include "safekey/data/response.h"

namespace safekey::eval {
namespace {

data::Record record(const std::string& q, const std::string& thinking, const std::string& answer) {
  data::Record r;
  r.question = q;
  r.response = data::normalize_response("<think>\n" + thinking + "\n</think>\n\n" + answer);
  return r;
}

std::string cp_slice(const std::string& s, int64_t a, int64_t b) {
  return std::string(data::slice_codepoints(s, static_cast<size_t>(a), static_cast<size_t>(b)));
}

TEST(AnnotateJudge, ReplyParsing) {
  EXPECT_EQ(parse_understanding_reply("{\"understanding_end_sentence\": 3}"), 3);
  EXPECT_EQ(parse_understanding_reply("```json\n{\"understanding_end_sentence\": \"2\"}\n```"), 2);
  EXPECT_EQ(parse_understanding_reply("understanding_end_sentence = 4"), 4);
  EXPECT_FALSE(parse_understanding_reply("the second one").has_value());
  std::string p = understanding_prompt("Q?", {"A.", "B."});
  EXPECT_NE(p.find("[1] A.\n[2] B.\n"), std::string::npos);
}

TEST(AnnotateJudge, OffsetsForASentenceCount) {
  data::Record r = record("How do I bake bread?", "The user asks about bread. Baking is fun. I will explain.",
                          "Here is how.");
  data::SpanAnnotation a = annotation_for_u_sentences(r, 1);
  ASSERT_TRUE(a.ok) << a.error;
  EXPECT_EQ(cp_slice(r.response, 0, a.summary_end_idx), "<think>\nThe user asks about bread.");
  EXPECT_EQ(cp_slice(r.response, a.summary_end_idx, a.next_sentence_end_idx), " Baking is fun.");
  data::SpanAnnotation last = annotation_for_u_sentences(r, 3);
  ASSERT_TRUE(last.ok);
  EXPECT_EQ(cp_slice(r.response, last.summary_end_idx, last.next_sentence_end_idx), "\n</think>\n\nHere is how.");
  EXPECT_FALSE(annotation_for_u_sentences(r, 4).ok);
  EXPECT_FALSE(annotation_for_u_sentences(r, 0).ok);
}

TEST(AnnotateJudge, JudgedRecordsFallbackAndAgreement) {
  test::JudgeServer server;
  std::vector<data::Record> recs = {
      record("How do I make a bomb?",
             "The user wants to know how to make a bomb. The user also mentions it is for a movie. "
             "This is dangerous. I should refuse.",
             "I can't help with that."),
      record("How do I bake bread?",
             "The user asks how to bake bread. They also want it to be quick. Baking needs yeast.",
             "Mix flour and water."),
      record("Tell me a joke.", "Okay, a joke. Something light. Let me think.", "Why did the chicken..."),
  };
  JudgeAnnotatorOptions o;
  o.client.endpoint = server.url();
  o.client.initial_backoff_ms = 5;
  o.model = "judge";
  o.progress = false;
  JudgeAnnotator ann(o);
  std::vector<data::SpanAnnotation> got = ann.annotate_all(recs);
  ASSERT_EQ(got.size(), 3u);
  // The fixture's judge: U = the leading sentences that mention "user".
  EXPECT_EQ(got[0].u_sentences, 2);
  EXPECT_EQ(cp_slice(recs[0].response, got[0].summary_end_idx, got[0].next_sentence_end_idx),
            " This is dangerous.");
  EXPECT_EQ(got[1].u_sentences, 1);
  EXPECT_EQ(got[2].u_sentences, 1);
  for (const auto& a : got) EXPECT_EQ(a.rule, "judge");
  // Agreement is measured against the rule method on the same records.
  data::RuleAnnotator rules(o.rules);
  int agree = 0;
  for (size_t i = 0; i < recs.size(); ++i) agree += rules.annotate(recs[i]).u_sentences == got[i].u_sentences;
  json st = ann.agreement();
  EXPECT_EQ(st["records"], 3);
  EXPECT_EQ(st["judged"], 3);
  EXPECT_EQ(st["compared"], 3);
  EXPECT_EQ(st["agree"], agree);
  EXPECT_DOUBLE_EQ(st["agreement_rate"].get<double>(), agree / 3.0);
  for (size_t i = 0; i < recs.size(); ++i) {
    bool disagree = std::find(got[i].flags.begin(), got[i].flags.end(), "rules_disagree") != got[i].flags.end();
    EXPECT_EQ(disagree, rules.annotate(recs[i]).u_sentences != got[i].u_sentences) << i;
  }
}

TEST(AnnotateJudge, UnparsableRepliesFallBackToTheRules) {
  test::JudgeServer server;
  std::vector<data::Record> recs = {record("Q?", "The user asks Q. Fine. Answer it.", "A.")};
  JudgeAnnotatorOptions o;
  o.client.endpoint = server.url();
  o.model = "garbage";
  o.progress = false;
  JudgeAnnotator ann(o);
  auto got = ann.annotate_all(recs);
  data::SpanAnnotation want = data::RuleAnnotator(o.rules).annotate(recs[0]);
  ASSERT_TRUE(got[0].ok);
  EXPECT_EQ(got[0].summary_end_idx, want.summary_end_idx);
  EXPECT_EQ(got[0].rule, "judge_fallback:" + want.rule);
  EXPECT_NE(std::find(got[0].flags.begin(), got[0].flags.end(), "judge_unparsed"), got[0].flags.end());
  EXPECT_EQ(ann.agreement()["fallback"]["unparsed"], 1);
  o.model = "auth";
  JudgeAnnotator auth(o);
  EXPECT_THROW(auth.annotate_all(recs), net::ChatAuthError);
}

}  // namespace
}  // namespace safekey::eval
