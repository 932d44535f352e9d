// BPE trainer: the written tokenizer.json loads in text::Tokenizer and in the HF Rust tokenizers
// (npm "tokenizers", skipped when scripts/install_test_refs.sh has not run), and both encode
// identically (ids and offsets) and decode back; added tokens keep their ids; the CLI writes the
// same file as the API.
#include <gtest/gtest.h>

#include "safekey/text/bpe_trainer.h"
#include "safekey/text/tokenizer.h"
#include "safekey/util/file.h"
#include "support/support.h"
#include "text/tokenizer_strings.h"

namespace safekey {
namespace {

const std::vector<std::string> kAdded = {"<｜User｜>", "<｜Assistant｜>", "<think>", "</think>"};
const std::vector<std::string> kSpecial = {"<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"};

std::vector<std::string> corpus() {
  std::vector<std::string> c;
  test::StringGen gen(11);
  for (int i = 0; i < 2000; ++i) c.push_back(gen.make({"<think>", "</think>", "<｜User｜>"}));
  return c;
}

text::TrainOptions options() {
  text::TrainOptions opt;
  opt.vocab_size = 1500;
  opt.special_tokens = kSpecial;
  opt.added_tokens = kAdded;
  opt.bos_token = kSpecial[0];
  return opt;
}

TEST(BpeTrainer, LayoutAndAddedTokens) {
  ordered_json tj = text::train_bpe(corpus(), options());
  text::Tokenizer tok = text::Tokenizer::from_json_text(tj.dump(), "trained");
  EXPECT_EQ(tok.vocab_size(), 1500u);
  EXPECT_EQ(tok.id_to_token(0), "!");  // GPT-2 byte order, as Qwen
  EXPECT_EQ(tok.token_to_id("Ġ"), 220);
  EXPECT_EQ(tok.token_to_id(kSpecial[0]), 1494);
  EXPECT_EQ(tok.token_to_id("</think>"), 1499);
  EXPECT_TRUE(tok.is_special(1494));
  EXPECT_FALSE(tok.is_special(1498));
  EXPECT_EQ(tok.bos_id(), 1494);
  EXPECT_EQ(tj["model"]["merges"].size(), 1494u - 256u);
  std::string s = "<｜User｜>Hello world<｜Assistant｜><think>\nok</think>";
  text::Encoding e = tok.encode(s, true);
  EXPECT_EQ(e.ids[0], 1494);
  EXPECT_EQ(e.ids[1], tok.token_to_id("<｜User｜>"));
  EXPECT_EQ(tok.decode(e.ids, true), s);
  // Merges are learned from the corpus: a frequent word is one token.
  EXPECT_EQ(tok.encode_ids(" the").size(), 1u);
  // Deterministic.
  EXPECT_EQ(text::train_bpe(corpus(), options()).dump(), tj.dump());
}

TEST(BpeTrainer, BadOptions) {
  text::TrainOptions opt = options();
  opt.vocab_size = 100;
  EXPECT_THROW(text::train_bpe(corpus(), opt), Error);
  opt = options();
  opt.pattern = "(bad";
  EXPECT_THROW(text::train_bpe(corpus(), opt), Error);
  opt = options();
  opt.bos_token = "<nope>";
  EXPECT_THROW(text::train_bpe(corpus(), opt), Error);
  EXPECT_THROW(text::train_bpe({"ok", "bad \xFF"}, options()), Error);
}

TEST(BpeTrainer, HfRustTokenizersEncodeIdentically) {
  const std::string node_modules = test::tokref_dir() + "/node_modules";
  SAFEKEY_REQUIRE_DIR(node_modules + "/tokenizers");
  std::string dir = test::make_temp_dir("bpe_trainer_ref");
  for (const char* pattern : {"qwen", "llama3"}) {
    text::TrainOptions opt = options();
    opt.pattern = pattern;
    opt.nfc = std::string(pattern) == "qwen";
    std::string path = dir + "/tokenizer_" + pattern + ".json";
    write_file_atomic(path, text::train_bpe(corpus(), opt).dump(2));
    text::Tokenizer tok = text::Tokenizer::from_file(path);
    test::StringGen gen(12345);
    std::vector<std::string> strings, special;
    for (int i = 0; i < 2000; ++i) strings.push_back(gen.make(kAdded));
    for (int i = 0; i < 200; ++i) special.push_back(gen.make(kSpecial));
    write_file_atomic(dir + "/in.json", json{{"plain", strings}, {"special", special}}.dump());
    auto r = test::run_process({"/usr/bin/env", "NODE_PATH=" + node_modules, "node",
                                std::string(SAFEKEY_SOURCE_DIR) + "/tests/text/tokenizer_ref.js", path,
                                dir + "/in.json", dir + "/out.json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    json ref = read_json_file(dir + "/out.json");
    size_t bad = 0;
    for (size_t i = 0; i < strings.size(); ++i) {
      text::Encoding e = tok.encode(strings[i]);
      bool same = json(e.ids) == ref["plain"][i]["ids"] && json(e.offsets) == ref["plain"][i]["offsets"] &&
                  json(tok.decode(e.ids)) == ref["plain"][i]["decoded"];
      if (!same && ++bad <= 3) ADD_FAILURE() << pattern << ": differs for " << json(strings[i]).dump();
    }
    for (size_t i = 0; i < special.size(); ++i)
      EXPECT_EQ(json(tok.encode(special[i], true).ids), ref["special"][i]["ids"]) << json(special[i]).dump();
    EXPECT_EQ(bad, 0u) << pattern;
  }
}

TEST(BpeTrainer, Cli) {
  std::string dir = test::make_temp_dir("bpe_trainer_cli");
  std::string text;
  for (const std::string& s : corpus()) {
    std::string line = s;
    for (char& c : line)
      if (c == '\n' || c == '\r') c = ' ';
    text += line + "\n";
  }
  size_t half = text.find('\n', text.size() / 2) + 1;
  write_file_atomic(dir + "/a.txt", text.substr(0, half));
  write_file_atomic(dir + "/b.txt", text.substr(half));
  auto r = test::run_safekey({"tokenizer", "train", "--corpus", dir + "/a.txt", dir + "/b.txt", "--vocab-size", "700",
                              "--out", dir + "/tok.json", "--special-tokens", "<｜begin▁of▁sentence｜>",
                              "--added-tokens", "<think>,</think>", "--bos-token", "<｜begin▁of▁sentence｜>"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  text::Tokenizer tok = text::Tokenizer::from_file(dir + "/tok.json");
  EXPECT_EQ(tok.vocab_size(), 700u);
  EXPECT_EQ(tok.token_to_id("</think>"), 699);
  EXPECT_EQ(tok.encode_ids("x", true).front(), 697);
  r = test::run_safekey({"tokenizer", "train", "--corpus", dir + "/missing.txt", "--vocab-size", "700", "--out",
                         dir + "/t2.json"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("missing.txt"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace safekey
