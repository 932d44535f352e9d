// Sampling: vLLM's repetition penalty, greedy, top-k / top-p limits, seeded draws; the incremental
// detokenizer with stop strings over the real R1-Distill-Qwen tokenizer.
#include <gtest/gtest.h>

#include <map>

#include "infer/tiny_model.h"
#include "safekey/infer/sampling.h"
#include "safekey/infer/text_stream.h"
#include "safekey/text/tokenizer.h"

namespace safekey::infer {
namespace {

TEST(Sampling, RepetitionPenaltyDividesPositiveMultipliesNegative) {
  auto logits = torch::tensor({2.0f, -1.0f, 0.5f, 3.0f, -0.5f});
  apply_repetition_penalty(logits, {0, 1, 4}, 2.0);
  auto expect = torch::tensor({1.0f, -2.0f, 0.5f, 3.0f, -1.0f});
  EXPECT_TRUE(torch::equal(logits, expect)) << logits;
  // Penalty 1 leaves the logits alone.
  auto l2 = torch::tensor({2.0f, -1.0f});
  apply_repetition_penalty(l2, {0, 1}, 1.0);
  EXPECT_TRUE(torch::equal(l2, torch::tensor({2.0f, -1.0f})));
}

TEST(Sampling, PenaltyCanChangeTheGreedyChoice) {
  auto logits = torch::tensor({2.0f, 1.5f, -3.0f});
  SamplingParams p;  // greedy
  std::mt19937_64 rng(1);
  EXPECT_EQ(choose_token(logits, p, rng), 0);
  apply_repetition_penalty(logits, {0}, 1.5);  // 2.0 -> 1.333 < 1.5
  EXPECT_EQ(choose_token(logits, p, rng), 1);
}

TEST(Sampling, TopKOneAndTinyTopPAreGreedy) {
  auto logits = torch::tensor({0.1f, 0.3f, 0.2f, -1.0f});
  std::mt19937_64 rng(5);
  SamplingParams k1;
  k1.temperature = 1.0;
  k1.top_k = 1;
  SamplingParams p0;
  p0.temperature = 1.0;
  p0.top_p = 1e-6;
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(choose_token(logits, k1, rng), 1);
    EXPECT_EQ(choose_token(logits, p0, rng), 1);
  }
}

TEST(Sampling, DrawsFollowTheDistributionAndTheSeed) {
  // probabilities 0.7 / 0.2 / 0.1 at temperature 1
  auto logits = torch::log(torch::tensor({0.7f, 0.2f, 0.1f}));
  SamplingParams p;
  p.temperature = 1.0;
  std::mt19937_64 rng(42);
  std::map<int64_t, int> counts;
  const int n = 4000;
  for (int i = 0; i < n; ++i) counts[choose_token(logits, p, rng)]++;
  EXPECT_NEAR(counts[0] / double(n), 0.7, 0.03);
  EXPECT_NEAR(counts[1] / double(n), 0.2, 0.03);
  EXPECT_NEAR(counts[2] / double(n), 0.1, 0.03);
  // top_p 0.8 keeps {0, 1} (mass before token 2 is 0.9 >= 0.8): token 2 never drawn.
  p.top_p = 0.8;
  for (int i = 0; i < 500; ++i) EXPECT_NE(choose_token(logits, p, rng), 2);
  // top_k 2 likewise.
  p.top_p = 1.0;
  p.top_k = 2;
  for (int i = 0; i < 500; ++i) EXPECT_NE(choose_token(logits, p, rng), 2);
  // Same seed, same draws.
  p.top_k = -1;
  std::mt19937_64 a(9), b(9);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(choose_token(logits, p, a), choose_token(logits, p, b));
}

TEST(Sampling, ValidateNamesTheField) {
  SamplingParams p;
  p.top_p = 0;
  try {
    p.validate("request 3");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("request 3: 'top_p'"), std::string::npos) << e.what();
  }
}

TEST(TextStream, Utf8CompletePrefix) {
  EXPECT_EQ(utf8_complete_prefix("abc"), 3u);
  EXPECT_EQ(utf8_complete_prefix("ab\xE4\xBD"), 2u);      // cut inside a 3-byte character
  EXPECT_EQ(utf8_complete_prefix("ab\xE4\xBD\xA0"), 5u);  // complete
  EXPECT_EQ(utf8_complete_prefix(""), 0u);
}

class TextStreamTok : public ::testing::Test {
 protected:
  void SetUp() override {
    SAFEKEY_REQUIRE_TINY_MODEL_REFS();
    tok_ = std::make_unique<text::Tokenizer>(text::Tokenizer::from_file(test::r1_tokenizer_json()));
  }
  DecodeFn decode() {
    return [t = tok_.get()](const std::vector<int64_t>& ids) { return t->decode(ids, true); };
  }
  std::vector<int64_t> ids(const std::string& s) {
    auto v = tok_->encode_ids(s, false);
    return {v.begin(), v.end()};
  }
  std::unique_ptr<text::Tokenizer> tok_;
};

TEST_F(TextStreamTok, DeltasRebuildTheTextAcrossSplitCharacters) {
  // Emoji and CJK split into byte-level tokens that end inside a character.
  std::string s = "Hello 你好, 🤖 robots! Ünïcödé 🧪🧪 done.";
  TextStream ts(decode(), {});
  std::string streamed;
  for (int64_t t : ids(s)) {
    EXPECT_FALSE(ts.push(t));
    std::string d = ts.take_ready();
    EXPECT_EQ(utf8_complete_prefix(d), d.size()) << "a delta ends inside a character";
    streamed += d;
  }
  ts.finish();
  streamed += ts.take_ready();
  EXPECT_EQ(streamed, s);
  EXPECT_EQ(ts.text(), s);
}

TEST_F(TextStreamTok, StopStringCutsAndIsNeverStreamed) {
  std::string s = "First part. STOP here and more text";
  TextStream ts(decode(), {"STOP", "never"});
  std::string streamed;
  bool stopped = false;
  for (int64_t t : ids(s)) {
    if (ts.push(t)) {
      stopped = true;
      break;
    }
    streamed += ts.take_ready();
    EXPECT_EQ(streamed.find("ST"), std::string::npos) << "the start of a stop string leaked: " << streamed;
  }
  ASSERT_TRUE(stopped);
  ts.finish();
  streamed += ts.take_ready();
  EXPECT_EQ(streamed, "First part. ");
  EXPECT_EQ(ts.text(), "First part. ");
  EXPECT_EQ(ts.matched_stop(), "STOP");
}

}  // namespace
}  // namespace safekey::infer
