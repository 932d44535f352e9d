// `safekey tokenizer train`: trains a byte-level BPE tokenizer and writes tokenizer.json (loads in
// HF tokenizers and encodes identically to text::Tokenizer).
//
//   safekey tokenizer train --corpus FILE... --vocab-size N --out tokenizer.json
//       [--special-tokens A,B] [--added-tokens C,D] [--bos-token A] [--pattern qwen|llama3|REGEX]
//       [--min-frequency 2] [--nfc true|false]
//
// Each corpus file is read as UTF-8 text; every line is one document.
#include <iostream>

#include "cli.h"
#include "safekey/text/bpe_trainer.h"
#include "safekey/text/unicode.h"
#include "safekey/util/error.h"
#include "safekey/util/file.h"

namespace safekey {
namespace {

int run_tokenizer_train(cli::Args& args) {
  std::vector<std::string> files;
  if (args.given("corpus")) {
    std::string all = args.str("corpus");
    size_t pos = 0;
    while (pos <= all.size()) {
      size_t nl = all.find_first_of("\n,", pos);
      if (nl == std::string::npos) nl = all.size();
      if (nl > pos) files.push_back(all.substr(pos, nl - pos));
      pos = nl + 1;
    }
  }
  for (const std::string& p : args.positional()) files.push_back(p);
  SK_CHECK(!files.empty(), "tokenizer train: --corpus is required");
  text::TrainOptions opt;
  std::string vs = args.required("vocab-size");
  try {
    opt.vocab_size = static_cast<size_t>(std::stoull(vs));
  } catch (const std::exception&) {
    fail("--vocab-size: '", vs, "' is not a number");
  }
  const std::string out = args.required("out");
  opt.special_tokens = args.list("special-tokens");
  opt.added_tokens = args.list("added-tokens");
  opt.bos_token = args.str("bos-token");
  opt.pattern = args.str("pattern");
  opt.min_frequency = args.i64("min-frequency");
  opt.nfc = args.on("nfc");
  std::vector<std::string> corpus;
  size_t bytes = 0;
  for (const std::string& f : files) {
    std::string data = read_file(f);
    bytes += data.size();
    text::utf8_check(data, f);
    size_t pos = 0;
    while (pos < data.size()) {
      size_t nl = data.find('\n', pos);
      size_t end = nl == std::string::npos ? data.size() : nl + 1;
      corpus.push_back(data.substr(pos, end - pos));
      pos = end;
    }
  }
  std::cerr << "tokenizer train: " << files.size() << " file(s), " << bytes << " bytes, " << corpus.size()
            << " lines\n";
  opt.progress = [](size_t done, size_t wanted) {
    std::cerr << "\rmerges " << done << "/" << wanted << std::flush;
  };
  ordered_json tj = text::train_bpe(corpus, opt);
  std::cerr << "\n";
  write_file_atomic(out, tj.dump(2));
  std::cerr << "wrote " << out << " (" << tj["model"]["vocab"].size() << " BPE tokens, "
            << tj["model"]["merges"].size() << " merges, " << tj["added_tokens"].size() << " added tokens)\n";
  return 0;
}

cli::Registrar reg({"tokenizer train", "train a byte-level BPE tokenizer and write tokenizer.json",
                    "safekey tokenizer train --corpus FILE... --vocab-size N --out tokenizer.json "
                    "[--special-tokens A,B] [--added-tokens C,D] [--bos-token A] [--pattern qwen|llama3|REGEX]\n"
                    "Every line of every corpus file is one document. --vocab-size counts the 256 bytes,\n"
                    "the merges and the added tokens; ids: bytes, merges, then added tokens in order.",
                    run_tokenizer_train});

}  // namespace
}  // namespace safekey
