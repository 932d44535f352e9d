// Unit tests of text::Tokenizer: known ids from TOKENIZERS.md on the real files (skipped without
// scripts/install_test_refs.sh), the hand-written pre-tokenizer against Oniguruma, offsets, decode
// of invalid UTF-8, tokenizer_config.json, bad input, and the tokenize/detokenize CLI.
#include <gtest/gtest.h>

#include "safekey/text/bpe_trainer.h"
#include "safekey/text/pre_tokenizer.h"
#include "safekey/text/tokenizer.h"
#include "safekey/text/unicode.h"
#include "safekey/util/file.h"
#include "support/support.h"
#include "text/tokenizer_strings.h"

namespace safekey {
namespace {

using text::Tokenizer;
using Ids = std::vector<int32_t>;

std::string qwen3_path() { return test::tokref_dir() + "/qwen3/package/models/tokenizer.json"; }
std::string llama3_path() { return test::tokref_dir() + "/llama3_1/package/models/tokenizer.json"; }
std::string r1_path() { return test::tokref_dir() + "/r1_distill_qwen_tokenizer.json"; }

// A small tokenizer trained here, so these tests need no downloaded files.
const std::string& mini_tokenizer_json() {
  static const std::string j = [] {
    std::vector<std::string> corpus;
    test::StringGen gen(7);
    for (int i = 0; i < 400; ++i) corpus.push_back(gen.make({}));
    text::TrainOptions opt;
    opt.vocab_size = 600;
    opt.special_tokens = {"<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"};
    opt.added_tokens = {"<｜User｜>", "<｜Assistant｜>", "<think>", "</think>"};
    opt.bos_token = "<｜begin▁of▁sentence｜>";
    return text::train_bpe(corpus, opt).dump();
  }();
  return j;
}
Tokenizer mini() { return Tokenizer::from_json_text(mini_tokenizer_json(), "mini"); }

std::string expect_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected safekey::Error";
  return "";
}

TEST(Tokenizer, Qwen3KnownIds) {
  SAFEKEY_REQUIRE_DIR(qwen3_path());
  Tokenizer tok = Tokenizer::from_file(qwen3_path());
  EXPECT_EQ(tok.encode_ids("Hello world"), (Ids{9707, 1879}));
  EXPECT_EQ(tok.encode_ids("<think>\nreasoning\n</think>\n\nanswer"),
            (Ids{151667, 198, 19895, 287, 198, 151668, 271, 9217}));
  EXPECT_EQ(tok.encode_ids("I'VE 'LL"), (Ids{40, 6, 4491, 364, 4086}));
  EXPECT_EQ(tok.encode_ids("  123"), (Ids{220, 220, 16, 17, 18}));
  EXPECT_EQ(tok.encode_ids("Hello world", true), (Ids{9707, 1879}));  // ByteLevel post-processor adds nothing
  EXPECT_EQ(tok.vocab_size(), 151669u);
  EXPECT_EQ(tok.token_to_id("<|im_end|>"), 151645);
  EXPECT_EQ(tok.id_to_token(220), "Ġ");
  EXPECT_EQ(tok.eos_id(), 151645);  // tokenizer_config.json: eos_token <|im_end|>
  EXPECT_EQ(tok.pad_id(), 151643);
  EXPECT_EQ(tok.bos_id(), -1);
  ASSERT_TRUE(tok.config().chat_template.has_value());
  EXPECT_EQ(tok.config().chat_template->size(), 4116u);
  // NFC: "e\u0301" becomes é; the composed character takes the first source character's range.
  text::Encoding e = tok.encode("e\u0301x");
  EXPECT_EQ(e.ids, (Ids{963, 87}));
  EXPECT_EQ(e.offsets, (std::vector<std::pair<size_t, size_t>>{{0, 1}, {2, 3}}));
  EXPECT_EQ(tok.decode(e.ids), "\u00e9x");
}

TEST(Tokenizer, R1DistillQwenKnownIds) {
  SAFEKEY_REQUIRE_DIR(r1_path());
  Tokenizer tok = Tokenizer::from_file(r1_path());
  EXPECT_EQ(tok.encode_ids("Hello world", true), (Ids{151646, 9707, 1879}));
  EXPECT_EQ(tok.encode_ids("<｜begin▁of▁sentence｜>You are a helpful assistant.<｜User｜>What is 17 * 24?"
                           "<｜Assistant｜><think>\n"),
            (Ids{151646, 2610, 525, 264, 10950, 17847, 13, 151644, 3838, 374, 220, 16, 22, 353, 220, 17, 19, 30,
                 151645, 151648, 198}));
  text::Encoding e = tok.encode("Hi", true);
  EXPECT_EQ(e.offsets.front(), (std::pair<size_t, size_t>{0, 0}));
  EXPECT_EQ(e.added_by_template, (std::vector<uint8_t>{1, 0}));
  // skip_special_tokens drops BOS/EOS only; <think> and <｜User｜> are not special.
  Ids ids = {151646, 151644, 13048, 151645, 151648, 198, 151649, 151643};
  EXPECT_EQ(tok.decode(ids, true), "<｜User｜>Hi<｜Assistant｜><think>\n</think>");
  EXPECT_EQ(tok.decode(ids, false), "<｜begin▁of▁sentence｜><｜User｜>Hi<｜Assistant｜><think>\n</think><｜end▁of▁sentence｜>");
  EXPECT_EQ(tok.bos_id(), 151646);  // from the post-processor (no tokenizer_config.json beside it)
}

TEST(Tokenizer, Llama3IgnoreMergesAndCleanUp) {
  SAFEKEY_REQUIRE_DIR(llama3_path());
  Tokenizer tok = Tokenizer::from_file(llama3_path());
  EXPECT_EQ(tok.encode_ids(" Việt"), (Ids{101798}));  // ignore_merges: whole word from the vocab
  EXPECT_EQ(tok.encode_ids("Hello world", true), (Ids{128000, 9906, 1917}));
  EXPECT_EQ(tok.encode_ids("1234567"), (Ids{4513, 10961, 22}));  // digits in groups of three
  EXPECT_TRUE(tok.config().clean_up_tokenization_spaces);
  EXPECT_EQ(tok.config().bos_token, "<|begin_of_text|>");
  EXPECT_EQ(tok.eos_id(), 128009);
  Ids ids = tok.encode_ids("Hello , world . It 's");
  EXPECT_EQ(tok.decode(ids), "Hello, world. It's");  // clean_up_tokenization_spaces from the config
  EXPECT_EQ(tok.decode(ids, false, false), "Hello , world . It 's");
}

TEST(Tokenizer, ConfigAddedTokenDicts) {
  json cfg = json::parse(R"({"bos_token": {"__type": "AddedToken", "content": "<s>"}, "eos_token": "</s>",
      "pad_token": null, "add_bos_token": true, "chat_template": [{"name": "default", "template": "T"}]})");
  text::TokenizerConfig c = text::parse_tokenizer_config(cfg, "cfg");
  EXPECT_EQ(c.bos_token, "<s>");
  EXPECT_EQ(c.eos_token, "</s>");
  EXPECT_EQ(c.pad_token, "");
  EXPECT_EQ(c.add_bos_token, std::optional<bool>(true));
  EXPECT_EQ(c.chat_template, std::optional<std::string>("T"));
  EXPECT_NE(expect_error([] { text::parse_tokenizer_config(json::parse(R"({"bos_token": 3})"), "cfg.json"); })
                .find("cfg.json: field 'bos_token'"),
            std::string::npos);
}

// The hand-written Qwen/Llama-3 pre-tokenizer must cut exactly where Oniguruma does.
TEST(Tokenizer, FastPreTokenizerMatchesOniguruma) {
  for (int digits : {1, 3}) {
    text::Regex re(digits == 1 ? text::kQwenPattern : text::kLlama3Pattern, "test");
    std::vector<std::string> texts;
    test::StringGen gen(99 + digits);
    for (int i = 0; i < 3000; ++i) texts.push_back(gen.make({"<think>", "<|im_end|>"}));
    // Every code point, 48 at a time, between separators that exercise each alternative.
    static const char* seps[] = {" ", "'", "1", "\n", "a", "  ", "\r\n", "'s", "!", "\t"};
    std::string s;
    int k = 0;
    for (uint32_t cp = 1; cp < 0x110000; ++cp) {
      if (cp >= 0xD800 && cp < 0xE000) continue;
      text::utf8_append(s, cp);
      if (cp % 3 == 0) s += seps[(cp / 3) % 10];
      if (++k == 48) {
        texts.push_back(s);
        s.clear();
        k = 0;
      }
    }
    texts.push_back(s);
    size_t bad = 0;
    for (const std::string& t : texts) {
      std::vector<std::pair<uint32_t, uint32_t>> a, b;
      re.find_all(t, 0, static_cast<uint32_t>(t.size()), a);
      text::split_qwen_llama(t, 0, static_cast<uint32_t>(t.size()), digits, b);
      if (a != b && ++bad <= 5) ADD_FAILURE() << "digits " << digits << ": pieces differ for " << json(t).dump();
    }
    EXPECT_EQ(bad, 0u);
  }
}

TEST(Tokenizer, OffsetsAndByteOffsets) {
  Tokenizer tok = mini();
  std::string s = "a\xF0\x9F\x98\x80" "b <think>x";  // a😀b <think>x
  text::Encoding e = tok.encode(s);
  ASSERT_EQ(e.ids.size(), e.offsets.size());
  ASSERT_EQ(e.ids.size(), e.byte_offsets.size());
  // Every token of the emoji covers the whole character: code points [1, 2), bytes [1, 5).
  for (size_t i = 0; i < e.ids.size(); ++i) {
    if (e.byte_offsets[i].first >= 1 && e.byte_offsets[i].first < 5) {
      EXPECT_EQ(e.byte_offsets[i], (std::pair<size_t, size_t>{1, 5}));
      EXPECT_EQ(e.offsets[i], (std::pair<size_t, size_t>{1, 2}));
    }
  }
  int32_t think = tok.token_to_id("<think>");
  auto it = std::find(e.ids.begin(), e.ids.end(), think);
  ASSERT_NE(it, e.ids.end());
  size_t k = static_cast<size_t>(it - e.ids.begin());
  EXPECT_EQ(e.offsets[k], (std::pair<size_t, size_t>{4, 11}));
  EXPECT_EQ(tok.decode(e.ids), s);
  // add_special_tokens: the trained post-processor prepends BOS with offsets (0, 0).
  text::Encoding b = tok.encode(s, true);
  EXPECT_EQ(b.ids.front(), tok.token_to_id("<｜begin▁of▁sentence｜>"));
  EXPECT_EQ(b.offsets.front(), (std::pair<size_t, size_t>{0, 0}));
  EXPECT_EQ(tok.decode(b.ids, true), s);
}

TEST(Tokenizer, DecodeInvalidUtf8IsReplaced) {
  Tokenizer tok = mini();
  // Byte tokens: the first byte of "😀" alone, then "a".
  int32_t f0 = tok.token_to_id(text::bytes_to_byte_level("\xF0"));
  int32_t a = tok.token_to_id("a");
  ASSERT_GE(f0, 0);
  EXPECT_EQ(tok.decode(Ids{f0, a}), "\xEF\xBF\xBD" "a");
  EXPECT_EQ(tok.decode(Ids{a, 999999, a}), "aa");  // unknown ids are skipped
}

TEST(Tokenizer, BadInputErrors) {
  std::string good = mini_tokenizer_json();
  auto load = [](const std::string& j) { Tokenizer::from_json_text(j, "tok.json"); };
  EXPECT_EQ(expect_error([&] { load("{"); }).rfind("tok.json:1:", 0), 0u);
  std::string truncated = expect_error([&] { load(good.substr(0, good.size() / 2)); });
  EXPECT_EQ(truncated.rfind("tok.json:", 0), 0u) << truncated;
  EXPECT_NE(truncated.find("invalid JSON"), std::string::npos) << truncated;
  EXPECT_NE(expect_error([&] { load("{}"); }).find("missing field 'model'"), std::string::npos);
  json j = json::parse(good);
  json u = j;
  u["model"] = json{{"type", "Unigram"}, {"vocab", json::array()}};
  EXPECT_NE(expect_error([&] { load(u.dump()); }).find("unsupported model type 'Unigram'"), std::string::npos);
  u["model"] = json{{"type", "WordPiece"}, {"vocab", json::object()}};
  EXPECT_NE(expect_error([&] { load(u.dump()); }).find("unsupported model type 'WordPiece'"), std::string::npos);
  u = j;
  u["normalizer"] = json{{"type", "Lowercase"}};
  EXPECT_NE(expect_error([&] { load(u.dump()); }).find("unsupported normalizer type 'Lowercase'"), std::string::npos);
  u = j;
  u["pre_tokenizer"]["pretokenizers"][0]["type"] = "Metaspace";
  EXPECT_NE(expect_error([&] { load(u.dump()); }).find("pre_tokenizer.pretokenizers[0]: unsupported pre_tokenizer type"),
            std::string::npos);
  u = j;
  u["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(unclosed";
  EXPECT_NE(expect_error([&] { load(u.dump()); }).find("invalid regex"), std::string::npos);
  u = j;
  u["decoder"] = json{{"type", "WordPiece"}};
  EXPECT_NE(expect_error([&] { load(u.dump()); }).find("unsupported decoder type"), std::string::npos);
  u = j;
  u["model"]["merges"].push_back(json::array({"zzzq", "x"}));
  EXPECT_NE(expect_error([&] { load(u.dump()); }).find("is not in the vocab"), std::string::npos);
  u = j;
  u["model"]["merges"][0] = 5;
  EXPECT_NE(expect_error([&] { load(u.dump()); }).find("model.merges[0]"), std::string::npos);
  u = j;
  u["added_tokens"][0].erase("content");
  EXPECT_NE(expect_error([&] { load(u.dump()); }).find("added_tokens[0]: missing field 'content'"), std::string::npos);

  Tokenizer tok = mini();
  EXPECT_NE(expect_error([&] { tok.encode("ok \xC3\x28 bad"); }).find("input text: invalid UTF-8 at byte 3"),
            std::string::npos);
  EXPECT_NE(expect_error([&] { tok.encode("\xED\xA0\x80"); }).find("invalid UTF-8"), std::string::npos);  // surrogate
  EXPECT_NE(expect_error([] { Tokenizer::from_file("/nonexistent/tokenizer.json"); }).find("/nonexistent"),
            std::string::npos);
  std::string dir = test::make_temp_dir("tok_empty");
  EXPECT_NE(expect_error([&] { Tokenizer::from_file(dir); }).find("no tokenizer.json"), std::string::npos);
}

TEST(Tokenizer, FromFolderReadsConfig) {
  std::string dir = test::make_temp_dir("tok_folder");
  write_file_atomic(dir + "/tokenizer.json", mini_tokenizer_json());
  write_file_atomic(dir + "/tokenizer_config.json",
                    R"({"bos_token": "<｜begin▁of▁sentence｜>", "eos_token": {"content": "<｜end▁of▁sentence｜>"},
                        "clean_up_tokenization_spaces": false, "chat_template": "{{ bos_token }}"})");
  Tokenizer a = Tokenizer::from_file(dir);
  Tokenizer b = Tokenizer::from_file(dir + "/tokenizer_config.json");
  EXPECT_EQ(a.eos_id(), a.token_to_id("<｜end▁of▁sentence｜>"));
  EXPECT_EQ(b.bos_id(), a.token_to_id("<｜begin▁of▁sentence｜>"));
  EXPECT_EQ(a.config().chat_template, std::optional<std::string>("{{ bos_token }}"));
  EXPECT_TRUE(a.is_special(a.bos_id()));
  EXPECT_FALSE(a.is_special(a.token_to_id("<think>")));
}

// ---- CLI --------------------------------------------------------------------------------------

TEST(TokenizerCli, TokenizeAndDetokenize) {
  std::string dir = test::make_temp_dir("tok_cli");
  write_file_atomic(dir + "/tokenizer.json", mini_tokenizer_json());
  Tokenizer tok = mini();
  std::string s = "Hello <think>wörld</think>";
  text::Encoding e = tok.encode(s);
  auto r = test::run_safekey({"tokenize", "--tokenizer", dir, "--text", s});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, json(e.ids).dump() + "\n");
  r = test::run_safekey({"tokenize", "--tokenizer", dir + "/tokenizer.json", "--text", s, "--offsets",
                         "--add-special-tokens"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  text::Encoding es = tok.encode(s, true);
  json want = {{"ids", es.ids}, {"offsets", es.offsets}};
  EXPECT_EQ(json::parse(r.out), want);
  write_file_atomic(dir + "/in.jsonl", json("a b").dump() + "\n\n" + json(s).dump() + "\n");
  r = test::run_safekey({"tokenize", "--tokenizer", dir, "--jsonl", dir + "/in.jsonl"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, json(tok.encode_ids("a b")).dump() + "\n" + json(e.ids).dump() + "\n");

  std::string ids;
  for (int32_t id : es.ids) ids += (ids.empty() ? "" : ",") + std::to_string(id);
  r = test::run_safekey({"detokenize", "--tokenizer", dir, "--ids", ids});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, json("<｜begin▁of▁sentence｜>" + s).dump() + "\n");
  r = test::run_safekey({"detokenize", "--tokenizer", dir, "--ids", ids, "--skip-special-tokens", "--raw"});
  EXPECT_EQ(r.out, s);
  write_file_atomic(dir + "/ids.jsonl", json(e.ids).dump() + "\n" + json{{"ids", es.ids}}.dump() + "\n");
  r = test::run_safekey({"detokenize", "--tokenizer", dir, "--jsonl", dir + "/ids.jsonl", "--skip-special-tokens"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, json(s).dump() + "\n" + json(s).dump() + "\n");
}

TEST(TokenizerCli, BadInputIsAClearError) {
  std::string dir = test::make_temp_dir("tok_cli_bad");
  write_file_atomic(dir + "/tokenizer.json", mini_tokenizer_json());
  write_file_atomic(dir + "/broken.json", mini_tokenizer_json().substr(0, 5000));
  auto r = test::run_safekey({"tokenize", "--tokenizer", dir + "/broken.json", "--text", "x"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("broken.json:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("invalid JSON"), std::string::npos) << r.err;
  r = test::run_safekey({"tokenize", "--tokenizer", dir, "--text", "bad \xFF byte"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("invalid UTF-8 at byte 4"), std::string::npos) << r.err;
  write_file_atomic(dir + "/in.jsonl", "\"ok\"\n[1,2]\n");
  r = test::run_safekey({"tokenize", "--tokenizer", dir, "--jsonl", dir + "/in.jsonl"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("in.jsonl:2: expected a JSON string"), std::string::npos) << r.err;
  r = test::run_safekey({"detokenize", "--tokenizer", dir, "--ids", "1,x"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--ids: 'x' is not a token id"), std::string::npos) << r.err;
  r = test::run_safekey({"tokenize", "--tokenizer", dir});
  EXPECT_EQ(r.exit_code, 1);
  r = test::run_safekey({"tokenize", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE((r.out + r.err).find("offsets"), std::string::npos);
}

}  // namespace
}  // namespace safekey
