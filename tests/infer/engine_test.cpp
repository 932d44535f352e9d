// The engine's KV cache slots and decode hooks on a small random Qwen2 (no tokenizer needed: the
// text is one character per token).
#include <gtest/gtest.h>

#include <map>

#include "safekey/infer/engine.h"
#include "safekey/model/decoder.h"
#include "safekey/util/error.h"

namespace safekey::infer {
namespace {

model::DecoderModel tiny_model() {
  json j = {{"architectures", {"Qwen2ForCausalLM"}}, {"vocab_size", 101}, {"hidden_size", 32},
            {"intermediate_size", 64}, {"num_hidden_layers", 2}, {"num_attention_heads", 4},
            {"num_key_value_heads", 2}, {"max_position_embeddings", 256}, {"tie_word_embeddings", true}};
  auto cfg = model::ModelConfig::from_json(j, "tiny");
  cfg.initializer_range = 0.3;
  model::DecoderModel m(cfg);
  model::init_weights(m, 3);
  m->eval();
  return m;
}

std::vector<int64_t> prompt(int64_t n, int64_t salt) {
  std::vector<int64_t> p;
  for (int64_t i = 0; i < n; ++i) p.push_back((i * 37 + salt * 11 + 1) % 101);
  return p;
}

EngineOptions options(int64_t batch) {
  EngineOptions o;
  o.max_batch_size = batch;
  o.decode = [](const std::vector<int64_t>& ids) { return std::string(ids.size(), 'x'); };
  return o;
}

Sequence seq(uint64_t id, std::vector<int64_t> p, int64_t new_tokens) {
  Sequence s;
  s.id = id;
  s.prompt_ids = std::move(p);
  s.params.max_new_tokens = new_tokens;
  s.params.repetition_penalty = 1.2;
  s.params.ignore_eos = true;
  return s;
}

struct Collect {
  std::map<uint64_t, std::vector<int64_t>> out;
  EventFn fn() {
    return [this](uint64_t id, const std::string&, bool done, const Completion* c) {
      if (done) out[id] = c->token_ids;
    };
  }
};

// Greedy ids of one sequence alone in an engine of one slot (the reference for the batched runs).
std::vector<int64_t> alone(model::DecoderModel& m, const Sequence& s) {
  Collect c;
  Engine e(m, options(1), c.fn());
  e.submit(s);
  while (!e.idle()) e.step();
  return c.out.at(s.id);
}

// Sequences join a running batch (one of them mid-way) and leave it at different steps; each
// output equals the sequence decoded alone, and the cache storage, allocated up front, is never
// reallocated (appending writes in place; joining and leaving copy no other row's cache, except
// the one move that keeps the running rows consecutive).
// Catches: a join that overwrites a running row's slot, a leave that shifts rows without their keys
// (or their repetition-penalty ids), per-step reallocation of the cache.
TEST(Engine, RowsJoinAndLeaveInPlace) {
  auto m = tiny_model();
  std::vector<Sequence> seqs = {seq(1, prompt(5, 1), 3), seq(2, prompt(11, 2), 9), seq(3, prompt(2, 3), 6),
                                seq(4, prompt(7, 4), 5)};
  Collect c;
  EngineOptions o = options(3);
  o.kv_capacity = 32;
  o.max_model_len = 32;
  Engine e(m, o, c.fn());
  e.submit(seqs[0]);
  e.submit(seqs[1]);
  e.step();
  const void* storage = e.cache().key_storage(0).data_ptr();
  e.step();
  e.submit(seqs[2]);  // joins the running batch
  e.submit(seqs[3]);  // waits for a free slot
  int64_t steps = 0;
  while (!e.idle()) {
    e.step();
    EXPECT_EQ(e.cache().key_storage(0).data_ptr(), storage) << "step " << steps;
    EXPECT_LE(e.running(), 3u);
    ++steps;
  }
  EXPECT_EQ(e.cache().capacity(), 32);
  for (const auto& s : seqs) EXPECT_EQ(c.out.at(s.id), alone(m, s)) << "sequence " << s.id;
}

// A sequence that cannot fit max_model_len is refused at submission, naming its numbers.
// Catches: an engine that accepts it and fails (or truncates) later, mid-batch.
TEST(Engine, SequenceLongerThanTheSlotIsRefused) {
  auto m = tiny_model();
  EngineOptions o = options(2);
  o.max_model_len = 16;
  Collect c;
  Engine e(m, o, c.fn());
  try {
    e.submit(seq(7, prompt(10, 1), 8));
    FAIL() << "10 + 8 positions must not fit a max_model_len of 16";
  } catch (const Error& err) {
    const std::string msg = err.what();
    EXPECT_NE(msg.find("18 positions"), std::string::npos) << msg;
    EXPECT_NE(msg.find("max_model_len is 16"), std::string::npos) << msg;
  }
  e.submit(seq(8, prompt(10, 1), 6));  // fits exactly
  while (!e.idle()) e.step();
  EXPECT_EQ(c.out.at(8).size(), 6u);
}

// The decode hook sees, for every row and step, the last-layer hidden state of the last token fed
// (equal to a separate forward's), and the logits; a bias added to the logits changes the choice,
// and forced tokens are emitted in order and then become the context of what follows.
// Catches: hidden states of the wrong position or row, a hook called after the choice, forced
// tokens that are emitted but not fed to the model (the continuation would differ).
TEST(Engine, HookSeesHiddenStatesBiasesAndForcesTokens) {
  torch::NoGradGuard ng;
  auto m = tiny_model();
  std::vector<Sequence> seqs = {seq(1, prompt(6, 1), 6), seq(2, prompt(9, 2), 6)};
  std::map<uint64_t, std::vector<torch::Tensor>> hidden;  // per sequence, per step
  EngineOptions o = options(2);
  o.hook = [&](StepView& v, Engine& eng) {
    for (size_t i = 0; i < v.ids.size(); ++i) {
      hidden[v.ids[i]].push_back(v.hidden[static_cast<int64_t>(i)].clone());
      if (v.ids[i] == 2 && v.generated[i] == 0) v.logits[static_cast<int64_t>(i)][11] += 1e4f;  // bias
      if (v.ids[i] == 1 && v.generated[i] == 2) EXPECT_TRUE(eng.force(1, {5, 6, 7}));
    }
  };
  Collect c;
  Engine e(m, o, c.fn());
  for (const auto& s : seqs) e.submit(s);
  while (!e.idle()) e.step();
  EXPECT_FALSE(e.force(1, {1}));  // finished: nothing to force

  const auto& out1 = c.out.at(1);
  ASSERT_EQ(out1.size(), 6u);
  EXPECT_EQ(std::vector<int64_t>(out1.begin() + 2, out1.begin() + 5), (std::vector<int64_t>{5, 6, 7}));
  EXPECT_EQ(c.out.at(2).at(0), 11);
  for (const auto& s : seqs) {
    // Each step's hidden state equals a plain forward over prompt + the tokens emitted before it.
    std::vector<int64_t> ctx = s.prompt_ids;
    const auto& out = c.out.at(s.id);
    ASSERT_EQ(hidden[s.id].size(), out.size());
    for (size_t k = 0; k < out.size(); ++k) {
      model::ForwardInput in;
      in.input_ids = torch::tensor(ctx, torch::kLong).unsqueeze(0);
      auto full = m->forward(in);
      EXPECT_LT((full.hidden[0][static_cast<int64_t>(ctx.size()) - 1] - hidden[s.id][k]).abs().max().item<double>(),
                1e-5)
          << "sequence " << s.id << " step " << k;
      ctx.push_back(out[k]);
    }
  }
  // After the forced tokens, sequence 1 continues greedily from them (penalty 1.2 included).
  Sequence cont = seq(9, seqs[0].prompt_ids, 1);
  cont.prompt_ids.insert(cont.prompt_ids.end(), out1.begin(), out1.begin() + 5);
  EXPECT_EQ(alone(m, cont).at(0), out1[5]);
}

}  // namespace
}  // namespace safekey::infer
