// Conformance of text::Tokenizer with the HF Rust tokenizers (npm "tokenizers", driven by
// tests/text/tokenizer_ref.js) on the real tokenizer.json files installed by
// scripts/install_test_refs.sh: 10,000 generated strings per vocabulary must give identical ids,
// identical code-point offsets and identical decoded text; plus llama.cpp's HF-generated vocab
// tests from ../shared/data/hf-configs/vocab-tests/. Skips with a message when references are absent.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <iostream>

#include "safekey/text/tokenizer.h"
#include "safekey/util/file.h"
#include "safekey/util/json.h"
#include "support/support.h"
#include "text/tokenizer_strings.h"

namespace safekey {
namespace {

struct Vocab {
  const char* name;
  const char* tokenizer;  // relative to tokref_dir()
};
const Vocab kVocabs[] = {
    {"qwen3", "qwen3/package/models/tokenizer.json"},
    {"llama3_1", "llama3_1/package/models/tokenizer.json"},
    {"deepseek_v3", "deepseek_v3/package/models/tokenizer.json"},
    {"r1_distill_qwen", "r1_distill_qwen_tokenizer.json"},
};

constexpr size_t kStrings = 10000;
constexpr size_t kSpecialStrings = 1000;  // also encoded with add_special_tokens = true

std::string node_path() { return test::tokref_dir() + "/node_modules"; }

// Runs the reference on `plain` (add_special_tokens = false) and `special` (true); returns
// {"plain": [...], "special": [...]}.
json run_reference(const std::string& tok_path, const std::vector<std::string>& plain,
                   const std::vector<std::string>& special, const std::string& dir) {
  // The reference's answers are cached in the build tree, keyed by everything they depend on.
  std::string input = json{{"plain", plain}, {"special", special}}.dump();
  std::string script = std::string(SAFEKEY_SOURCE_DIR) + "/tests/text/tokenizer_ref.js";
  size_t key = std::hash<std::string>()(input + "\x1f" + tok_path + "\x1f" + read_file(tok_path) + "\x1f" +
                                        read_file(script) + "\x1f" + read_file(node_path() + "/tokenizers/package.json"));
  std::string cache_dir = std::string(SAFEKEY_BINARY_DIR) + "/tokref-cache";
  std::string cached = cat(cache_dir, "/", key, ".json");
  if (path_exists(cached)) return read_json_file(cached);
  std::string in = dir + "/in.json", out = dir + "/out.json";
  write_file_atomic(in, input);
  std::vector<std::string> argv = {"/usr/bin/env", "NODE_PATH=" + node_path(), "node",
                                   std::string(SAFEKEY_SOURCE_DIR) + "/tests/text/tokenizer_ref.js",
                                   tok_path, in, out};
  test::RunResult r = test::run_process(argv);
  if (r.exit_code != 0) throw Error("reference tokenizer failed: " + r.err);
  json result = read_json_file(out);
  make_dirs(cache_dir);
  write_file_atomic(cached, read_file(out));
  return result;
}

// The added tokens' texts (Llama's hundreds of reserved tokens only in part).
std::vector<std::string> added_texts(const std::string& path) {
  json j = read_json_file(path);
  std::vector<std::string> out;
  for (const json& t : j["added_tokens"]) {
    if (out.size() < 40 || t["content"].get<std::string>().find("reserved") == std::string::npos)
      out.push_back(t["content"].get<std::string>());
  }
  return out;
}

std::string show(const std::string& s) { return json(s).dump(); }

class TokenizerConformance : public ::testing::TestWithParam<Vocab> {};

TEST_P(TokenizerConformance, MatchesHfRustTokenizers) {
  const Vocab& v = GetParam();
  SAFEKEY_REQUIRE_DIR(node_path() + "/tokenizers");
  const std::string path = test::tokref_dir() + "/" + v.tokenizer;
  SAFEKEY_REQUIRE_DIR(path);
  text::Tokenizer tok = text::Tokenizer::from_file(path);
  test::StringGen gen(0x5AFE0000 + std::hash<std::string>()(v.name) % 1000);
  std::vector<std::string> specials = added_texts(path);
  std::vector<std::string> strings;
  while (strings.size() < kStrings) strings.push_back(gen.make(specials));

  std::string dir = test::make_temp_dir(std::string("tok_conf_") + v.name);
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::string> sub(strings.begin(), strings.begin() + kSpecialStrings);
  json both = run_reference(path, strings, sub, dir);
  const json& ref = both["plain"];
  const json& ref_special = both["special"];
  auto t1 = std::chrono::steady_clock::now();
  ASSERT_EQ(ref.size(), strings.size());

  size_t id_bad = 0, off_bad = 0, dec_bad = 0, round_trips = 0, bytes = 0;
  for (size_t i = 0; i < strings.size(); ++i) {
    const std::string& s = strings[i];
    bytes += s.size();
    text::Encoding e = tok.encode(s, false);
    std::vector<int32_t> want = ref[i]["ids"].get<std::vector<int32_t>>();
    if (e.ids != want) {
      if (++id_bad <= 5) ADD_FAILURE() << v.name << " ids differ for " << show(s) << "\n ours " << json(e.ids).dump()
                                       << "\n  ref " << json(want).dump();
      continue;
    }
    auto want_off = ref[i]["offsets"].get<std::vector<std::pair<size_t, size_t>>>();
    if (e.offsets != want_off) {
      if (++off_bad <= 5) ADD_FAILURE() << v.name << " offsets differ for " << show(s) << "\n ours "
                                        << json(e.offsets).dump() << "\n  ref " << json(want_off).dump();
    }
    std::string dec = tok.decode(e.ids, false, false);
    std::string want_dec = ref[i]["decoded"].get<std::string>();
    if (dec != want_dec) {
      if (++dec_bad <= 5) ADD_FAILURE() << v.name << " decode differs for " << show(s) << "\n ours " << show(dec)
                                        << "\n  ref " << show(want_dec);
    }
    if (want_dec == s) {
      ++round_trips;
      EXPECT_EQ(dec, s) << "HF round-trips but we do not: " << show(s);
    }
  }
  for (size_t i = 0; i < sub.size(); ++i) {
    text::Encoding e = tok.encode(sub[i], true);
    EXPECT_EQ(json(e.ids), ref_special[i]["ids"]) << v.name << " add_special_tokens ids for " << show(sub[i]);
    EXPECT_EQ(json(e.offsets), ref_special[i]["offsets"]) << v.name << " add_special_tokens offsets for " << show(sub[i]);
  }
  auto t2 = std::chrono::steady_clock::now();
  std::cout << v.name << ": " << strings.size() << " strings (" << bytes << " bytes), ids differ " << id_bad
            << ", offsets differ " << off_bad << ", decode differs " << dec_bad << ", HF round-trips " << round_trips
            << "; reference " << std::chrono::duration<double>(t1 - t0).count() << " s, ours "
            << std::chrono::duration<double>(t2 - t1).count() << " s\n";
  EXPECT_EQ(id_bad, 0u);
  EXPECT_EQ(off_bad, 0u);
  EXPECT_EQ(dec_bad, 0u);
}

INSTANTIATE_TEST_SUITE_P(Vocabs, TokenizerConformance, ::testing::ValuesIn(kVocabs),
                         [](const ::testing::TestParamInfo<Vocab>& info) { return std::string(info.param.name); });

// llama.cpp's convert_hf_to_gguf_update.py outputs: HF AutoTokenizer.encode(text, add_special_tokens=False).
struct VocabTest {
  const char* name;       // ggml-vocab-<name>.gguf.{inp,out}
  const char* tokenizer;  // relative to tokref_dir()
};
const VocabTest kVocabTests[] = {
    {"qwen2", "qwen3/package/models/tokenizer.json"},
    {"deepseek_r1_qwen", "r1_distill_qwen_tokenizer.json"},
    {"llama_bpe", "llama3_1/package/models/tokenizer.json"},
};

class LlamaCppVocab : public ::testing::TestWithParam<VocabTest> {};

TEST_P(LlamaCppVocab, MatchesHfGeneratedIds) {
  const VocabTest& v = GetParam();
  std::string name = v.name;
  for (char& c : name)
    if (c == '_') c = '-';
  const std::string base = test::shared_dir() + "/data/hf-configs/vocab-tests/ggml-vocab-" + name + ".gguf";
  SAFEKEY_REQUIRE_DIR(base + ".inp");
  const std::string path = test::tokref_dir() + "/" + v.tokenizer;
  SAFEKEY_REQUIRE_DIR(path);
  text::Tokenizer tok = text::Tokenizer::from_file(path);
  std::string inp = read_file(base + ".inp"), out = read_file(base + ".out");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  for (size_t pos = 0; pos < inp.size();) {
    size_t k = inp.find(sep, pos);
    if (k == std::string::npos) break;
    texts.push_back(inp.substr(pos, k - pos));
    pos = k + sep.size();
  }
  std::vector<std::vector<int32_t>> want;
  for (size_t pos = 0; pos < out.size();) {
    size_t nl = out.find('\n', pos);
    if (nl == std::string::npos) nl = out.size();
    std::vector<int32_t> ids;
    std::string line = out.substr(pos, nl - pos);
    for (size_t i = 0; i < line.size();) {
      while (i < line.size() && line[i] == ' ') ++i;
      size_t j = i;
      while (j < line.size() && line[j] != ' ') ++j;
      if (j > i) ids.push_back(std::stoi(line.substr(i, j - i)));
      i = j;
    }
    want.push_back(ids);
    pos = nl + 1;
  }
  ASSERT_EQ(texts.size(), want.size()) << base;
  ASSERT_GE(texts.size(), 40u);
  for (size_t i = 0; i < texts.size(); ++i)
    EXPECT_EQ(tok.encode(texts[i], false).ids, want[i]) << "test " << i << ": " << show(texts[i]);
}

INSTANTIATE_TEST_SUITE_P(Vocabs, LlamaCppVocab, ::testing::ValuesIn(kVocabTests),
                         [](const ::testing::TestParamInfo<VocabTest>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace safekey
