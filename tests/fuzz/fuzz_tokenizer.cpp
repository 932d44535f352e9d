// libFuzzer target for the tokenizer (built only with -DSAFEKEY_FUZZ=ON, clang):
//   mode 0: encode the input as text (invalid UTF-8 must be a safekey::Error) and check the
//           invariants: one offset per id, offsets ordered within the text, decode round-trip of
//           NFC-stable ASCII text;
//   mode 1: load the input as a tokenizer.json (bad files must be a safekey::Error);
//   mode 2: decode the input as little-endian 32-bit ids.
// The tokenizer is trained at start-up on a fixed corpus (or read from $SAFEKEY_FUZZ_TOKENIZER).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "safekey/text/bpe_trainer.h"
#include "safekey/text/tokenizer.h"
#include "safekey/util/error.h"

using namespace safekey;

static const text::Tokenizer& tokenizer() {
  static const text::Tokenizer tok = [] {
    if (const char* p = std::getenv("SAFEKEY_FUZZ_TOKENIZER")) return text::Tokenizer::from_file(p);
    std::vector<std::string> corpus = {
        "Hello world, it's a test of the tokenizer.\n", "def f(x):\n    return x * 2  # 1234567\n",
        "我们在这里测试分词器。 日本語 😀👍🏽 café naïve e\u0301", "<think>reasoning</think>\n\nanswer"};
    text::TrainOptions opt;
    opt.vocab_size = 400;
    opt.min_frequency = 1;
    opt.special_tokens = {"<|bos|>"};
    opt.added_tokens = {"<think>", "</think>"};
    opt.bos_token = "<|bos|>";
    return text::Tokenizer::from_json_text(text::train_bpe(corpus, opt).dump(), "fuzz");
  }();
  return tok;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const text::Tokenizer& tok = tokenizer();
  std::string input(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0: {
      text::Encoding e;
      try {
        e = tok.encode(input, (data[0] & 0x80) != 0);
      } catch (const Error&) {
        return 0;  // invalid UTF-8
      }
      if (e.offsets.size() != e.ids.size() || e.byte_offsets.size() != e.ids.size()) std::abort();
      for (auto [s, t] : e.byte_offsets)
        if (s > t || t > input.size()) std::abort();
      bool ascii = true;
      for (char c : input) ascii &= static_cast<unsigned char>(c) < 0x80;
      if (ascii && tok.decode(e.ids, false, false) != (data[0] & 0x80 ? "<|bos|>" : "") + input) std::abort();
      break;
    }
    case 1:
      try {
        text::Tokenizer t = text::Tokenizer::from_json_text(input, "fuzz.json");
        t.decode(t.encode_ids("Hello <think> 123"));
      } catch (const Error&) {
      }
      break;
    case 2: {
      std::vector<int32_t> ids(input.size() / 4);
      if (!ids.empty()) std::memcpy(ids.data(), input.data(), ids.size() * 4);
      tok.decode(ids, (data[0] & 0x80) != 0);
      break;
    }
  }
  return 0;
}
