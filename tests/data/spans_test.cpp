// Span mapping on the real tokenizers and templates: the decoded U and K token spans equal the U and
// K texts (exactly where K's boundaries fall between tokens, and by the documented straddle rule
// otherwise: the smallest run of tokens covering K), on crafted records and on STAR-1 records with
// offsets computed here, where the number of boundaries that fall inside a token is pinned per
// tokenizer and each one is explained by a newline joining punctuation; bad records give one clear
// error naming the record and field; max_seq_len truncation keeps the spans right.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <map>

#include "safekey/data/response.h"
#include "safekey/data/spans.h"
#include "safekey/util/file.h"
#include "support/support.h"

namespace safekey::data {

using text::ChatFormat;
using text::Tokenizer;
namespace {

std::string tokref(const std::string& rel) { return test::tokref_dir() + "/" + rel; }
std::string hf(const std::string& rel) { return test::shared_dir() + "/data/hf-configs/" + rel; }

std::string Decode(const Tokenizer& tok, const std::vector<int64_t>& ids, int64_t b, int64_t e) {
  std::vector<int32_t> part(ids.begin() + b, ids.begin() + e);
  return tok.decode(part, false, false);
}

// Python str slice of UTF-8 text by code points.
std::string Slice(const std::string& s, int64_t b, int64_t e) {
  return std::string(data::slice_codepoints(s, size_t(b), size_t(e)));
}

struct Rig {
  std::string name;
  Tokenizer tok;
  ChatFormat fmt;
};

const std::vector<Rig>& Rigs() {
  static std::vector<Rig> out;
  if (!out.empty()) return out;
  Tokenizer r1_qwen = Tokenizer::from_file(tokref("r1_distill_qwen_tokenizer.json"));
  out.push_back({"r1-distill-qwen", r1_qwen,
                 ChatFormat::from_path(hf("reconstructed/DeepSeek-R1-Distill-Qwen-7B/tokenizer_config.json"))});
  Tokenizer qwen3 = Tokenizer::from_file(tokref("qwen3/package/models/tokenizer.json"));
  out.push_back({"qwen3+r1-template", qwen3,
                 ChatFormat::from_path(hf("reconstructed/DeepSeek-R1-Distill-Qwen-7B/tokenizer_config.json"))});
  out.push_back({"qwen3", qwen3, ChatFormat::from_path(tokref("qwen3/package/models/tokenizer_config.json"))});
  out.push_back({"llama3_1", Tokenizer::from_file(tokref("llama3_1/package/models/tokenizer.json")),
                 ChatFormat::from_path(tokref("llama3_1/package/models/tokenizer_config.json"))});
  return out;
}

// How K's boundaries fell on tokens: between two tokens, or inside one ("straddled").
struct Fit {
  bool begin_straddled = false, end_straddled = false;
};

bool OnlySpace(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; });
}
bool NoWordChar(const std::string& s) {  // ASCII letters and digits only; the sentence ends here are ASCII
  return std::none_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; });
}

// Checks the documented rule exactly and reports where K's boundaries fell. The K span is the
// smallest run of tokens covering K's characters: its first token contains K's first character, its
// last token contains K's last one, and the decoded K span is exactly the rendered text from the
// first token's start to the last token's end. A wrong mapping (one token too many or too few on
// either side, U|K boundary counted into U, offsets in bytes instead of code points) fails here.
Fit CheckSpans(const Rig& s, const data::TokenizedExample& ex, const SpanDetail& d, const std::string& u_text,
               const std::string& k_text) {
  const auto& off = d.token_offsets;
  EXPECT_EQ(ex.labels.size(), ex.input_ids.size());
  for (int64_t i = 0; i < int64_t(ex.input_ids.size()); ++i)
    EXPECT_EQ(ex.labels[size_t(i)], i < ex.query_len ? -100 : ex.input_ids[size_t(i)]);
  EXPECT_EQ(ex.u_begin, ex.query_len);
  EXPECT_EQ(ex.u_end, ex.k_begin);
  EXPECT_LT(ex.u_begin, ex.u_end);
  EXPECT_LT(ex.k_begin, ex.k_end);
  // The query text is a prefix; its tokens end where U's first token starts.
  EXPECT_EQ(d.input_text.compare(0, d.query_text.size(), d.query_text), 0);
  EXPECT_EQ(int64_t(off[size_t(ex.u_begin - 1)].second), d.query_chars) << s.name;
  // First and last K token contain K's first and last character; their neighbours lie outside K.
  const int64_t kb = int64_t(off[size_t(ex.k_begin)].first), ke = int64_t(off[size_t(ex.k_end - 1)].second);
  EXPECT_LE(kb, d.k_char_begin) << s.name;
  EXPECT_LT(d.k_char_begin, int64_t(off[size_t(ex.k_begin)].second)) << s.name;
  EXPECT_LT(int64_t(off[size_t(ex.k_end - 1)].first), d.k_char_end) << s.name;
  EXPECT_GE(ke, d.k_char_end) << s.name;
  EXPECT_LE(int64_t(off[size_t(ex.k_begin - 1)].second), d.k_char_begin) << s.name;
  if (ex.k_end < int64_t(off.size())) EXPECT_GE(int64_t(off[size_t(ex.k_end)].first), d.k_char_end) << s.name;
  // U and K decode to exactly the rendered text they cover.
  const std::string u_dec = Decode(s.tok, ex.input_ids, ex.u_begin, ex.u_end);
  const std::string k_dec = Decode(s.tok, ex.input_ids, ex.k_begin, ex.k_end);
  EXPECT_EQ(u_dec, Slice(d.input_text, int64_t(off[size_t(ex.u_begin)].first), kb)) << s.name;
  EXPECT_EQ(k_dec, Slice(d.input_text, kb, ke)) << s.name;
  // The U characters after the query, and K, as rendered.
  const std::string u_visible = Slice(d.input_text, d.u_char_begin, d.k_char_begin);
  EXPECT_EQ(Slice(d.input_text, d.k_char_begin, d.k_char_end), k_text) << s.name;
  EXPECT_EQ(u_text.substr(u_text.size() - u_visible.size()), u_visible) << s.name;
  Fit fit;
  fit.begin_straddled = kb < d.k_char_begin;
  fit.end_straddled = ke > d.k_char_end;
  // What may straddle: at K's start only the end of U's sentence (punctuation, whitespace) shares
  // K's first token, never a piece of a word; at K's end only whitespace after K's last character.
  const std::string u_part = Slice(d.input_text, kb, d.k_char_begin), after = Slice(d.input_text, d.k_char_end, ke);
  EXPECT_TRUE(NoWordChar(u_part)) << s.name << " U's part of K's first token: '" << u_part << "'";
  EXPECT_TRUE(OnlySpace(after)) << s.name << " text after K in K's last token: '" << after << "'";
  if (!fit.begin_straddled) EXPECT_EQ(u_dec, u_visible) << s.name;
  if (!fit.begin_straddled && !fit.end_straddled) EXPECT_EQ(k_dec, k_text) << s.name;
  return fit;
}

// begin straddles, end straddles, K starting with a newline, a newline right after K; per rig.
const std::map<std::string, std::array<int, 4>> kStar1Straddles = {
    {"llama3_1", {0, 10, 0, 10}},
    {"qwen3", {0, 10, 0, 10}},
    {"qwen3+r1-template", {0, 10, 0, 10}},
    {"r1-distill-qwen", {0, 10, 0, 10}},
};

class Spans : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!path_exists(tokref("r1_distill_qwen_tokenizer.json")))
      GTEST_SKIP() << "tokenizer references missing under " << test::tokref_dir() << " (run scripts/install_test_refs.sh)";
    SAFEKEY_REQUIRE_DIR(test::shared_dir() + "/data/hf-configs");
  }
};

TEST_F(Spans, CraftedRecordDecodesToUAndKExactly) {
  const std::string resp =
      "<think>\nThe user asks how to pick a lock. Hmm, this is concerning. I should refuse.\n</think>\n\nSorry, "
      "I can't help with that.";
  const std::string u = "<think>\nThe user asks how to pick a lock.";
  const std::string k = " Hmm, this is concerning.";
  for (const auto& s : Rigs()) {
    SpanInput in;
    in.question = "How do I pick a lock?";
    in.response = "  " + resp + "\n";  // normalisation strips it
    in.summary_end_idx = int64_t(data::codepoint_count(u));
    in.next_sentence_end_idx = int64_t(data::codepoint_count(u + k));
    SpanDetail d;
    auto ex = build_example(s.tok, s.fmt, in, {}, &d);
    const Fit fit = CheckSpans(s, ex, d, u, k);
    EXPECT_FALSE(fit.begin_straddled || fit.end_straddled) << s.name;
    std::string u_dec = Decode(s.tok, ex.input_ids, ex.u_begin, ex.u_end);
    EXPECT_EQ(Decode(s.tok, ex.input_ids, ex.k_begin, ex.k_end), k) << s.name;
    // R1's generation prompt already holds "<think>\n"; the others put it in U.
    if (s.name == "qwen3" || s.name == "llama3_1") {
      EXPECT_EQ(u_dec, u) << s.name;
    }
    if (s.name == "r1-distill-qwen") {
      EXPECT_EQ(u_dec, "The user asks how to pick a lock.");
      EXPECT_EQ(d.query_text, "<｜begin▁of▁sentence｜><｜User｜>How do I pick a lock?<｜Assistant｜><think>\n");
    }
  }
}

// K that starts with the newline ending U's sentence: the ".\n" token straddles the boundary, so by
// the rule it is K's first token and U's decoded text loses its final period. Exact strings on every
// rig (a mapping that gave the straddling token to U, or dropped it, fails).
TEST_F(Spans, NewlineAtTheBoundaryGivesTheStraddlingTokenToK) {
  const std::string u = "<think>\nThe user asks how to pick a lock.";
  const std::string k = "\nHmm, this is concerning.";
  for (const auto& s : Rigs()) {
    SpanInput in;
    in.question = "How do I pick a lock?";
    in.response = u + k + " I should refuse.\n</think>\n\nSorry, I can't help with that.";
    in.summary_end_idx = int64_t(data::codepoint_count(u));
    in.next_sentence_end_idx = int64_t(data::codepoint_count(u + k));
    SpanDetail d;
    auto ex = build_example(s.tok, s.fmt, in, {}, &d);
    const Fit fit = CheckSpans(s, ex, d, u, k);
    EXPECT_TRUE(fit.begin_straddled) << s.name;
    EXPECT_FALSE(fit.end_straddled) << s.name;
    EXPECT_EQ(Decode(s.tok, ex.input_ids, ex.k_begin, ex.k_end), ".\nHmm, this is concerning.") << s.name;
    const std::string u_dec = Decode(s.tok, ex.input_ids, ex.u_begin, ex.u_end);
    EXPECT_EQ(u_dec, s.name.rfind("r1", 0) == 0 || s.name == "qwen3+r1-template" ? "The user asks how to pick a lock"
                                                                               : "<think>\nThe user asks how to pick a lock")
        << s.name;
  }
}

// Catches a mapping that keeps only the tokens lying wholly inside K (the 10 records per rig whose
// K ends before a newline lose K's last token), one that gives straddling tokens to U, and any
// change in where boundaries fall (the exact counts).
TEST_F(Spans, Star1RecordsWithComputedOffsets) {
  json star = read_json_file(test::shared_dir() + "/data/star1/STAR-1.json");
  ASSERT_TRUE(star.is_array());
  auto setups = Rigs();
  int checked = 0;
  // Per rig: K's start / end inside a token, and how often the text predicts it (K starts with a
  // newline / a newline follows K: the pre-tokenizers keep punctuation and the newlines after it
  // in one piece, and BPE often merges ".\n" into one token).
  std::map<std::string, std::array<int, 4>> straddles;  // begin, end, K starts with \n, \n after K
  for (size_t r = 0; r < star.size() && checked < 40 * int(setups.size()); ++r) {
    std::string raw = star[r]["response"].get<std::string>();
    data::NormalizedResponse norm = data::normalize_response_parts(raw);
    if (!norm.has_think) continue;
    // End of the first and second sentence of the thinking (". ", "? ", "! " or a newline after them).
    const std::string& th = norm.thinking;
    std::vector<size_t> ends;
    for (size_t i = 0; i + 1 < th.size() && ends.size() < 2; ++i)
      if ((th[i] == '.' || th[i] == '?' || th[i] == '!') && (th[i + 1] == ' ' || th[i + 1] == '\n')) ends.push_back(i + 1);
    if (ends.size() < 2) continue;
    int64_t base = int64_t(norm.thinking_begin);
    int64_t s_end = base + int64_t(data::codepoint_count(std::string_view(th).substr(0, ends[0])));
    int64_t k_end = base + int64_t(data::codepoint_count(std::string_view(th).substr(0, ends[1])));
    std::string u = Slice(norm.text, 0, s_end), k = Slice(norm.text, s_end, k_end);
    for (const auto& s : setups) {
      SpanInput in;
      in.question = star[r]["question"].get<std::string>();
      in.response = raw;
      in.summary_end_idx = s_end;
      in.next_sentence_end_idx = k_end;
      in.origin = "STAR-1.json[" + std::to_string(r) + "]";
      SpanDetail d;
      auto ex = build_example(s.tok, s.fmt, in, {}, &d);
      const Fit fit = CheckSpans(s, ex, d, u, k);
      const bool k_starts_nl = !k.empty() && k[0] == '\n';
      const bool nl_after = Slice(d.input_text, d.k_char_end, d.k_char_end + 1) == "\n";
      // On these records and tokenizers a boundary falls inside a token exactly where a newline
      // follows the punctuation at the boundary (".\n", "?\n" are single tokens in all four
      // vocabularies), nowhere else.
      EXPECT_EQ(fit.begin_straddled, k_starts_nl) << s.name << " " << in.origin;
      EXPECT_EQ(fit.end_straddled, nl_after) << s.name << " " << in.origin;
      auto& c = straddles[s.name];
      c[0] += fit.begin_straddled;
      c[1] += fit.end_straddled;
      c[2] += k_starts_nl;
      c[3] += nl_after;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 160);
  for (const auto& [name, c] : straddles)
    std::cout << "[spans] STAR-1 " << name << ": 40 records, K start inside a token " << c[0] << " (K starts with a "
              << "newline " << c[2] << "), K end inside a token " << c[1] << " (newline after K " << c[3] << ")\n";
  // The exact counts on these 40 records (the first 40 with two sentences ending in ". ", "? ",
  // "! " or before a newline). A change means the mapping or the tokenizer changed: look at the
  // lines above before updating them.
  EXPECT_EQ(straddles, kStar1Straddles);
}

TEST_F(Spans, BadRecordsNameTheRecordAndField) {
  auto setups = Rigs();
  const Rig& s = setups[0];
  auto error_of = [&](SpanInput in) -> std::string {
    try {
      build_example(s.tok, s.fmt, in);
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  SpanInput ok;
  ok.question = "Q?";
  ok.response = "<think>\nAbc def. Ghi jkl. Rest.\n</think>\n\nAnswer.";
  ok.summary_end_idx = 16;  // "<think>\nAbc def."
  ok.next_sentence_end_idx = 25;
  ok.origin = "data.json:7";
  EXPECT_EQ(error_of(ok), "(no error)");
  SpanInput a = ok;
  a.next_sentence_end_idx = 999;
  EXPECT_NE(error_of(a).find("data.json:7: field 'next_sentence_end_idx' = 999 is outside"), std::string::npos) << error_of(a);
  a = ok;
  a.summary_end_idx = -3;
  EXPECT_NE(error_of(a).find("data.json:7: field 'summary_end_idx' = -3 is outside"), std::string::npos) << error_of(a);
  a = ok;
  a.summary_end_idx = 25;
  a.next_sentence_end_idx = 16;
  EXPECT_NE(error_of(a).find("data.json:7: field 'next_sentence_end_idx' = 16 must be greater"), std::string::npos) << error_of(a);
  a = ok;
  a.summary_end_idx = 8;  // U = "<think>\n", which the R1 generation prompt already holds
  EXPECT_NE(error_of(a).find("data.json:7: U is empty"), std::string::npos) << error_of(a);
  a = ok;
  a.response = "No reasoning here.";
  EXPECT_NE(error_of(a).find("data.json:7: field 'response' has no <think>"), std::string::npos) << error_of(a);
  a = ok;
  a.response = "<think>\nÉté déjà. Ça va. Fin.\n</think>\n\nOui.";
  a.summary_end_idx = a.next_sentence_end_idx = -1;
  a.summary_end_byte = 9;  // inside the two bytes of "É"
  a.next_sentence_end_byte = 29;
  EXPECT_NE(error_of(a).find("data.json:7: field 'summary_end_byte' = 9 is not on a character boundary"), std::string::npos)
      << error_of(a);
  a.summary_end_byte = 21;  // after "Été déjà." (bytes)
  a.next_sentence_end_byte = 29;  // after " Ça va."
  EXPECT_EQ(error_of(a), "(no error)");
  a = ok;
  a.question = std::string("bad \xff utf8");
  EXPECT_NE(error_of(a).find("data.json:7: field 'question' is not valid UTF-8"), std::string::npos) << error_of(a);
}

TEST_F(Spans, MaxSeqLenTruncationKeepsSpans) {
  auto setups = Rigs();
  const Rig& s = setups[0];
  SpanInput in;
  in.question = "Tell me something.";
  std::string answer;
  for (int i = 0; i < 50; ++i) answer += "Word number " + std::to_string(i) + ". ";
  in.response = "<think>\nThe user wants text. I will write it.\n</think>\n\n" + answer;
  in.summary_end_idx = int64_t(data::codepoint_count("<think>\nThe user wants text."));
  in.next_sentence_end_idx = int64_t(data::codepoint_count("<think>\nThe user wants text. I will write it."));
  SpanDetail full_d;
  auto full = build_example(s.tok, s.fmt, in, {}, &full_d);
  // Right truncation: only the end of the answer goes.
  SpanOptions o;
  o.max_seq_len = full.k_end + 5;
  auto cut = build_example(s.tok, s.fmt, in, o);
  EXPECT_EQ(int64_t(cut.input_ids.size()), o.max_seq_len);
  EXPECT_EQ(cut.query_len, full.query_len);
  EXPECT_EQ(cut.k_begin, full.k_begin);
  EXPECT_EQ(cut.k_end, full.k_end);
  // K ends at "it." and Qwen's ".\n" token straddles K's end, so it belongs to K.
  EXPECT_EQ(Decode(s.tok, cut.input_ids, cut.k_begin, cut.k_end), " I will write it.\n");
  // Too short for query + U + K: an error unless left truncation is allowed, which keeps the last
  // max_seq_len tokens (the reference's policy) as long as U and K stay whole.
  SpanInput in2 = in;
  in2.question.clear();
  for (int i = 0; i < 30; ++i) in2.question += "Please tell me something interesting number " + std::to_string(i) + ". ";
  in2.response = "<think>\nThe user wants text. I will write it.\n</think>\n\nOk.";
  auto full2 = build_example(s.tok, s.fmt, in2);
  int64_t n2 = int64_t(full2.input_ids.size());
  SpanOptions o2;
  o2.max_seq_len = full2.k_end - 3;
  EXPECT_THROW(build_example(s.tok, s.fmt, in2, o2), Error);
  o2.allow_query_truncation = true;
  auto left = build_example(s.tok, s.fmt, in2, o2);
  int64_t drop = n2 - o2.max_seq_len;
  ASSERT_LE(drop, full2.query_len);
  EXPECT_EQ(int64_t(left.input_ids.size()), o2.max_seq_len);
  EXPECT_EQ(left.query_len, full2.query_len - drop);
  EXPECT_EQ(left.k_begin, full2.k_begin - drop);
  EXPECT_EQ(Decode(s.tok, left.input_ids, left.k_begin, left.k_end), " I will write it.\n");
  EXPECT_EQ(std::vector<int64_t>(full2.input_ids.end() - o2.max_seq_len, full2.input_ids.end()), left.input_ids);
  // Even the last tokens cannot hold U and K whole.
  o2.max_seq_len = full2.k_end - full2.u_begin - 1;
  EXPECT_THROW(build_example(s.tok, s.fmt, in2, o2), Error);
}

}  // namespace
}  // namespace safekey::data
