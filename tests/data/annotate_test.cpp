// Sentence segmentation and the rule-based U / K annotator, on hand-written records and on STAR-1.
#include <gtest/gtest.h>

#include <algorithm>

#include "safekey/data/annotate.h"
#include "safekey/data/annotate_file.h"
#include "safekey/data/response.h"
#include "safekey/data/sentences.h"
#include "safekey/util/file.h"
#include "support/support.h"

using namespace safekey;
using namespace safekey::data;

namespace {

std::vector<std::string> pieces(std::string_view text, const std::vector<Sentence>& ss) {
  std::vector<std::string> out;
  for (const auto& s : ss) out.emplace_back(text.substr(s.begin, s.end - s.begin));
  return out;
}

Record make(const std::string& question, const std::string& raw_response) {
  Record r;
  r.question = question;
  r.response = normalize_response(raw_response);
  r.origin = "test:1";
  return r;
}

struct Expect {
  std::string u_tail;  // U without the leading "<think>\n"
  std::string k;
  std::string rule;
  std::vector<std::string> flags;
};

void check(const Record& r, const SpanAnnotation& a, const Expect& e) {
  ASSERT_TRUE(a.ok) << a.error;
  const std::string_view u = slice_codepoints(r.response, 0, static_cast<size_t>(a.summary_end_idx));
  const std::string_view k = slice_codepoints(r.response, static_cast<size_t>(a.summary_end_idx),
                                              static_cast<size_t>(a.next_sentence_end_idx));
  EXPECT_EQ(u, "<think>\n" + e.u_tail);
  EXPECT_EQ(k, e.k);
  EXPECT_EQ(a.rule, e.rule);
  EXPECT_EQ(a.flags, e.flags);
}

}  // namespace

TEST(Sentences, ReferenceSplitMatchesThePythonRegex) {
  // Expected values from Python: re.split(r"(?<=[.?])(?<!\.\.\.)\s+", text).
  std::string t = "a. b? c... d.... e?.. f.\u3000\u2003g";
  EXPECT_EQ(pieces(t, split_sentences_reference(t)),
            (std::vector<std::string>{"a.", "b?", "c... d.... e?..", "f.", "g"}));
  t = "Wait... what? Ok.  Next";
  EXPECT_EQ(pieces(t, split_sentences_reference(t)), (std::vector<std::string>{"Wait... what?", "Ok.", "Next"}));
  t = "x.\n\n y";
  EXPECT_EQ(pieces(t, split_sentences_reference(t)), (std::vector<std::string>{"x.", "y"}));
  EXPECT_TRUE(split_sentences_reference("").empty());
}

TEST(Sentences, AbbreviationSplitsAreRejoined) {
  const std::string t = "A passage by J.K. Rowling. See e.g. this. Mr. Smith came. Ok.";
  auto ss = split_sentences(t);
  EXPECT_EQ(pieces(t, ss), (std::vector<std::string>{"A passage by J.K. Rowling.", "See e.g. this.",
                                                     "Mr. Smith came.", "Ok."}));
  EXPECT_TRUE(ss[0].merged);
  EXPECT_FALSE(ss[3].merged);
  // A single initial joins only after a capitalised word; country abbreviations end sentences.
  const std::string u = "By Viktor E. Frankl. Use plan A. Then go to the U.S. They said.";
  EXPECT_EQ(pieces(u, split_sentences(u)), (std::vector<std::string>{"By Viktor E. Frankl.", "Use plan A.",
                                                                     "Then go to the U.S.", "They said."}));
}

TEST(RuleAnnotator, HandWrittenRecords) {
  RuleAnnotator rules;
  struct Case {
    std::string q, response;
    Expect e;
  };
  const std::vector<Case> cases = {
      {"How do I bake bread?",
       "<think>Okay, so the user is asking how to bake bread. Hmm, that's a harmless request. Let me explain.</think>Sure.",
       {"Okay, so the user is asking how to bake bread.", " Hmm, that's a harmless request.", "user_cue", {}}},
      {"Write a poem about cats.",
       "<think>Okay, so I need to figure out how to respond to this user's request. The user wants me to write a poem "
       "about cats. That seems fine. Let me write it.</think>Here.",
       {"Okay, so I need to figure out how to respond to this user's request. The user wants me to write a poem about "
        "cats.",
        " That seems fine.", "meta_opener", {}}},
      {"Cookie recipe please",
       "<think>Okay, so the user wants a recipe for cookies. They also want it to be gluten-free. I should check the "
       "ingredients. Then write it.</think>Ok.",
       {"Okay, so the user wants a recipe for cookies. They also want it to be gluten-free.",
        " I should check the ingredients.", "user_cue+continuation", {}}},
      {"How do volcanoes erupt and what causes magma pressure?",
       "<think>Alright, I need to explain volcanoes. Volcanoes erupt when magma pressure builds underground. First, "
       "I should describe magma.</think>Magma.",
       {"Alright, I need to explain volcanoes. Volcanoes erupt when magma pressure builds underground.",
        " First, I should describe magma.", "task_cue+overlap", {}}},
      {"Tell me about plants",
       "<think>Photosynthesis converts light into energy. Hmm, interesting. Done.</think>Plants.",
       {"Photosynthesis converts light into energy.", " Hmm, interesting.", "default_first", {"no_cue"}}},
      {"Tea?", "<think>The user asks about tea.</think>Tea is a drink. Enjoy.",
       {"The user asks about tea.", "\n</think>\n\nTea is a drink.", "user_cue", {"k_in_answer", "short_thinking"}}},
      {"Hi", "<think>\n\n</think>\n\nSure. Here it is.",
       {"\n</think>\n\n", "Sure.", "empty_thinking", {"empty_thinking", "k_in_answer", "short_thinking"}}},
      {"Books",
       "<think>Okay, so the user wants a passage by J.K. Rowling. Hmm, copyright applies. I will summarise.</think>No.",
       {"Okay, so the user wants a passage by J.K. Rowling.", " Hmm, copyright applies.", "user_cue",
        {"abbreviation_merged"}}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.response);
    Record r = make(c.q, c.response);
    check(r, rules.annotate(r), c.e);
  }
}

TEST(RuleAnnotator, CapOnUAndCodePointOffsets) {
  RuleOptions o;
  o.max_u_sentences = 2;
  RuleAnnotator rules(o);
  Record r = make("q", "<think>The user wants A. They also want B. They also want C. Hmm.</think>x");
  check(r, rules.annotate(r), {"The user wants A. They also want B.", " They also want C.",
                               "user_cue+continuation", {"u_long"}});
  // Offsets count code points as Python does (values from Python's str.index).
  Record cjk = make("q", "<think>Okay, so the user asks about \u4e2d\u6587 \U0001F600. Hmm, fine.</think>No.");
  SpanAnnotation a = RuleAnnotator().annotate(cjk);
  ASSERT_TRUE(a.ok);
  EXPECT_EQ(a.summary_end_idx, 42);
  EXPECT_EQ(a.next_sentence_end_idx, 53);
  EXPECT_EQ(make_span_annotator("rules", {})->name(), "rules");
  EXPECT_THROW(make_span_annotator("no-such-method", {}), Error);
}

TEST(RuleAnnotator, Star1EveryRecordGetsValidSpans) {
  const std::string path = test::shared_dir() + "/data/star1/STAR-1.json";
  if (!path_exists(path)) GTEST_SKIP() << "missing " << path;
  LoadOptions lo;
  lo.require_spans = false;
  LoadResult loaded = load_records(path, lo);
  ASSERT_EQ(loaded.records.size(), 1000u);
  RuleAnnotator rules;
  int default_first = 0;
  for (const Record& r : loaded.records) {
    SCOPED_TRACE(r.origin);
    SpanAnnotation a = rules.annotate(r);
    ASSERT_TRUE(a.ok) << a.error;
    default_first += a.rule == "default_first";
    const std::string_view resp = r.response;
    const size_t close = resp.find(kThinkClose);
    const std::string_view thinking = resp.substr(kThinkOpen.size(), close - kThinkOpen.size());
    const size_t u_end = byte_of_codepoint(resp, static_cast<size_t>(a.summary_end_idx));
    const size_t k_end = byte_of_codepoint(resp, static_cast<size_t>(a.next_sentence_end_idx));
    ASSERT_NE(u_end, std::string::npos);
    ASSERT_NE(k_end, std::string::npos);
    // U reaches into the thinking and ends exactly at the end of one of its sentences.
    ASSERT_GT(u_end, kThinkOpen.size());
    const auto ss = split_sentences(thinking);
    EXPECT_TRUE(std::any_of(ss.begin(), ss.end(), [&](const Sentence& s) {
      return kThinkOpen.size() + s.end == u_end;
    }));
    // K is non-empty, holds text, and ends at the end of the following sentence.
    ASSERT_GT(k_end, u_end);
    EXPECT_FALSE(python_strip(resp.substr(u_end, k_end - u_end)).empty());
    EXPECT_TRUE(std::any_of(ss.begin(), ss.end(), [&](const Sentence& s) {
      return kThinkOpen.size() + s.end == k_end;
    }) || std::find(a.flags.begin(), a.flags.end(), "k_in_answer") != a.flags.end());
  }
  // The cues recognise the opening restatement of nearly every STAR-1 trace.
  EXPECT_LT(default_first, 50);
}

TEST(AnnotateFile, Star1RoundTripsThroughTheStrictLoader) {
  const std::string path = test::shared_dir() + "/data/star1/STAR-1.json";
  if (!path_exists(path)) GTEST_SKIP() << "missing " << path;
  const std::string dir = test::make_temp_dir("annotate");
  RuleAnnotator rules;
  AnnotateFileOptions o;
  o.report_path = dir + "/report.json";
  json report = annotate_file(path, dir + "/star1.jsonl", rules, o);
  EXPECT_EQ(report["annotated"], 1000);
  EXPECT_EQ(report["per_record"].size(), 1000u);
  LoadResult back = load_records(dir + "/star1.jsonl");  // strict: spans required
  ASSERT_EQ(back.records.size(), 1000u);
  const ordered_json& first = back.records[0].raw;
  EXPECT_TRUE(first.contains("score"));  // every input field is kept
  EXPECT_EQ(first["annotation"]["method"], "rules");
  EXPECT_EQ(read_json_file(o.report_path)["annotated"], 1000);
  // A second run keeps the offsets it finds.
  json again = annotate_file(dir + "/star1.jsonl", dir + "/again.json", rules, o);
  EXPECT_EQ(again["kept"], 1000);
  EXPECT_EQ(again["annotated"], 0);
}
