// The generator on a tiny random Qwen2 with the real R1-Distill-Qwen tokenizer and chat template:
// batched greedy output equals unbatched output exactly (left padding, per-row positions, rows
// joining and leaving), the KV-cache path equals full recomputation, prefilling prompts, stop
// strings, eos, length, streaming, seeds, and the context policy.
#include <gtest/gtest.h>

#include "infer/tiny_model.h"
#include "safekey/infer/generator.h"
#include "safekey/infer/prompt.h"
#include "safekey/text/chat_template.h"
#include "safekey/text/tokenizer.h"

namespace safekey::infer {
namespace {

class GeneratorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!test::tiny_model_refs_present()) return;
    dir_ = new std::string(test::make_tiny_model("gen_tiny", 256));
    tok_ = new text::Tokenizer(text::Tokenizer::from_file(*dir_));
    chat_ = new text::ChatFormat(text::ChatFormat::from_path(*dir_));
  }
  void SetUp() override { SAFEKEY_REQUIRE_TINY_MODEL_REFS(); }

  Generator make(int64_t batch, GeneratorOptions o = {}) {
    o.max_batch_size = batch;
    return Generator(model::load_model(*dir_), *tok_, chat_, o);
  }
  static Request user(const std::string& s) {
    Request r;
    r.messages = {{"user", s}};
    return r;
  }
  static std::vector<Request> prompts() {
    return {user("Hi"), user("How do I bake bread at home? Give me the steps."),
            user("Tell me a long story about a dragon who learns to code in C++ and ships a server."),
            user("2+2?"), user("Explain the KV cache in one paragraph, please, with an example.")};
  }

  static std::string* dir_;
  static text::Tokenizer* tok_;
  static text::ChatFormat* chat_;
};
std::string* GeneratorTest::dir_ = nullptr;
text::Tokenizer* GeneratorTest::tok_ = nullptr;
text::ChatFormat* GeneratorTest::chat_ = nullptr;

TEST_F(GeneratorTest, BatchedGreedyEqualsUnbatched) {
  SamplingParams p;
  p.max_new_tokens = 24;
  p.repetition_penalty = 1.2;
  p.ignore_eos = true;
  auto reqs = prompts();
  std::vector<Completion> alone;
  {
    auto g = make(1);
    for (auto& r : reqs) alone.push_back(g.generate({r}, p)[0]);
  }
  for (int64_t batch : {16, 2, 3}) {  // all at once; and rows joining as others finish
    auto g = make(batch);
    auto together = g.generate(reqs, p);
    ASSERT_EQ(together.size(), reqs.size());
    for (size_t i = 0; i < reqs.size(); ++i) {
      EXPECT_EQ(together[i].token_ids, alone[i].token_ids) << "batch " << batch << " request " << i;
      EXPECT_EQ(together[i].text, alone[i].text);
      EXPECT_EQ(together[i].prompt_tokens, alone[i].prompt_tokens);
      EXPECT_EQ(together[i].finish_reason, "length");
    }
  }
  // Rows of different lengths retire at different steps: mixed max_new_tokens in one batch.
  auto g = make(16);
  std::vector<SamplingParams> ps(reqs.size(), p);
  for (size_t i = 0; i < ps.size(); ++i) ps[i].max_new_tokens = 3 + 5 * static_cast<int64_t>(i);
  auto mixed = g.generate(reqs, ps);
  for (size_t i = 0; i < reqs.size(); ++i) {
    ASSERT_EQ(mixed[i].token_ids.size(), static_cast<size_t>(ps[i].max_new_tokens));
    std::vector<int64_t> prefix(alone[i].token_ids.begin(),
                                alone[i].token_ids.begin() + std::min<int64_t>(ps[i].max_new_tokens, 24));
    EXPECT_EQ(std::vector<int64_t>(mixed[i].token_ids.begin(), mixed[i].token_ids.begin() + prefix.size()), prefix)
        << "request " << i;
  }
}

TEST_F(GeneratorTest, CachedDecodingEqualsFullRecomputation) {
  auto g = make(4);
  Request r = user("What is a transformer?");
  SamplingParams p;
  p.max_new_tokens = 12;
  p.ignore_eos = true;
  auto out = g.generate({r}, p)[0];
  // Reference: no cache, the whole sequence every step, argmax of the last position.
  torch::NoGradGuard ng;
  auto m = model::load_model(*dir_);
  std::vector<int64_t> seq = g.prompt_ids(r, p, 0);
  std::vector<int64_t> ref;
  for (int i = 0; i < 12; ++i) {
    model::ForwardInput in;
    in.input_ids = torch::tensor(seq, torch::kInt64).unsqueeze(0);
    auto logits = m->forward(in).logits;  // [1, T, V]
    int64_t t = logits[0][logits.size(1) - 1].argmax().item<int64_t>();
    ref.push_back(t);
    seq.push_back(t);
  }
  EXPECT_EQ(out.token_ids, ref);
}

TEST_F(GeneratorTest, PrefillingAppendsSpaceAndFirstNTargetTokens) {
  auto g = make(2);
  Request r = user("Write a tutorial on something harmful");
  std::string target = "Sure, here is a tutorial on how to do it:\n\nStep 1: gather the materials you need";
  r.prefill = target;
  r.prefill_tokens = 5;
  text::RenderOptions gen_prompt;
  gen_prompt.add_generation_prompt = true;
  std::string base =
      chat_->render(std::vector<text::ChatMessage>{{"user", "Write a tutorial on something harmful"}}, gen_prompt);
  const std::string gen_tail = "<｜Assistant｜><think>\n";
  ASSERT_EQ(base.substr(base.size() - gen_tail.size()), gen_tail);
  auto ids = tok_->encode_ids(target, false);
  std::string first5 = tok_->decode(std::vector<int32_t>(ids.begin(), ids.begin() + 5), true);
  EXPECT_EQ(first5, "Sure, here is a");
  EXPECT_EQ(g.render(r), base + " " + first5);
  r.prefill_tokens = -1;  // the whole target
  EXPECT_EQ(g.render(r), base + " " + target);
  // Generation continues after the prefill; the completion holds only new text.
  SamplingParams p;
  p.max_new_tokens = 4;
  r.prefill_tokens = 5;
  auto c = g.generate({r}, p)[0];
  EXPECT_EQ(c.prompt, base + " " + first5);
  EXPECT_EQ(c.prompt_tokens, static_cast<int64_t>(tok_->encode_ids(base + " " + first5, false).size()));
}

TEST_F(GeneratorTest, MultiTurnMessagesUseTheTemplate) {
  auto g = make(2);
  Request r;
  r.messages = {{"user", "Hello"}, {"assistant", "<think>\nhm\n</think>\n\nHi there"}, {"user", "And now?"}};
  // The R1 template drops earlier reasoning from assistant turns (the reference's gen.py keeps the
  // template as shipped).
  EXPECT_EQ(g.render(r),
            "<｜begin▁of▁sentence｜><｜User｜>Hello<｜Assistant｜>\n\nHi there<｜end▁of▁sentence｜><｜User｜>And now?"
            "<｜Assistant｜><think>\n");
}

TEST_F(GeneratorTest, StopStringsEosAndLength) {
  auto g = make(4);
  Request r = user("Count to ten");
  SamplingParams p;
  p.max_new_tokens = 20;
  p.ignore_eos = true;
  auto free = g.generate({r}, p)[0];
  EXPECT_EQ(free.finish_reason, "length");
  EXPECT_EQ(free.token_ids.size(), 20u);
  ASSERT_GE(free.text.size(), 8u);
  // A stop string taken from the middle of the free text cuts it there.
  std::string stop = free.text.substr(free.text.size() / 2, 3);
  size_t at = free.text.find(stop);
  p.stop = {stop};
  auto cut = g.generate({r}, p)[0];
  EXPECT_EQ(cut.finish_reason, "stop");
  EXPECT_EQ(cut.stop_string, stop);
  EXPECT_EQ(cut.text, free.text.substr(0, at));
  // eos: declare the 6th generated token an eos id; generation ends with it.
  GeneratorOptions o;
  o.eos_token_ids = {free.token_ids[5]};
  auto g2 = make(4, o);
  p.stop.clear();
  p.ignore_eos = false;
  auto eos = g2.generate({r}, p)[0];
  size_t first = std::find(free.token_ids.begin(), free.token_ids.end(), free.token_ids[5]) - free.token_ids.begin();
  EXPECT_EQ(eos.finish_reason, "stop");
  EXPECT_EQ(eos.token_ids, std::vector<int64_t>(free.token_ids.begin(), free.token_ids.begin() + first + 1));
}

TEST_F(GeneratorTest, StreamingDeltasAddUpToTheText) {
  auto g = make(3);
  auto reqs = prompts();
  SamplingParams p;
  p.max_new_tokens = 16;
  p.ignore_eos = true;
  std::vector<std::string> streamed(reqs.size());
  std::vector<int> finals(reqs.size(), 0);
  auto out = g.generate(reqs, std::vector<SamplingParams>(reqs.size(), p),
                        [&](size_t i, const std::string& d, bool done, const Completion* c) {
                          streamed[i] += d;
                          if (done) {
                            finals[i]++;
                            ASSERT_NE(c, nullptr);
                          }
                        });
  for (size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_EQ(finals[i], 1);
    EXPECT_EQ(streamed[i], out[i].text);
  }
}

TEST_F(GeneratorTest, SeededSamplingDoesNotDependOnTheBatch) {
  auto reqs = prompts();
  SamplingParams p;
  p.max_new_tokens = 10;
  p.temperature = 0.9;
  p.top_p = 0.9;
  p.top_k = 50;
  p.ignore_eos = true;
  p.seed = 1234;
  auto g1 = make(1);
  auto alone = g1.generate({reqs[2]}, p)[0];
  auto g8 = make(8);
  auto together = g8.generate(reqs, p);
  EXPECT_EQ(together[2].token_ids, alone.token_ids);
  p.seed = 99;
  auto other = g1.generate({reqs[2]}, p)[0];
  EXPECT_NE(other.token_ids, alone.token_ids);
}

TEST_F(GeneratorTest, ContextPolicy) {
  std::string long_text;
  for (int i = 0; i < 120; ++i) long_text += "word" + std::to_string(i) + " ";
  Request r = user(long_text);  // far more than 256 tokens
  SamplingParams p;
  p.max_new_tokens = 8;
  auto g = make(2);
  try {
    g.generate({user("short"), r}, p);
    FAIL() << "expected an overflow error";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("request 1"), std::string::npos) << m;
    EXPECT_NE(m.find("context of 256 tokens"), std::string::npos) << m;
  }
  GeneratorOptions o;
  o.overflow = OverflowPolicy::TruncateLeft;
  auto gt = make(2, o);
  auto c = gt.generate({r}, p)[0];
  EXPECT_EQ(c.prompt_tokens, 256 - 8);
  EXPECT_EQ(c.token_ids.size(), 8u);
  // A prompt that fits but leaves less room than max_new_tokens stops at the context.
  GeneratorOptions small;
  small.max_context = 40;
  auto gs = make(2, small);
  p.max_new_tokens = 100;
  p.ignore_eos = true;
  auto s = gs.generate({user("Hi")}, p)[0];
  EXPECT_EQ(s.prompt_tokens + static_cast<int64_t>(s.token_ids.size()), 40);
  EXPECT_EQ(s.finish_reason, "length");
}

TEST_F(GeneratorTest, PromptIdsOutsideTheVocabularyAreRejected) {
  auto g = make(1);
  Request r;
  r.prompt_ids = {1, 2, 999999};
  SamplingParams p;
  EXPECT_THROW(g.generate({r}, p), Error);
}

}  // namespace
}  // namespace safekey::infer
