// `safekey tokenize`: encodes text with a model's tokenizer.json, as HF tokenizers does.
// External checks call it: keep the interface stable.
//
//   safekey tokenize --tokenizer PATH (--text S | --jsonl FILE) [--offsets] [--add-special-tokens]
//
// Prints one line per input: a JSON array of ids, or with --offsets a JSON object
// {"ids":[...],"offsets":[[start,end],...]} whose offsets are code-point indices into the input
// (Python str indices), end exclusive. Each --jsonl line is one JSON string; blank lines are skipped.
#include <iostream>

#include "cli.h"
#include "jsonl_input.h"
#include "safekey/text/tokenizer.h"
#include "safekey/util/error.h"

namespace safekey {
namespace {

void print_encoding(const text::Encoding& e, bool offsets) {
  std::string out = offsets ? "{\"ids\":[" : "[";
  for (size_t i = 0; i < e.ids.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(e.ids[i]);
  }
  out += ']';
  if (offsets) {
    out += ",\"offsets\":[";
    for (size_t i = 0; i < e.offsets.size(); ++i) {
      if (i) out += ',';
      out += cat('[', e.offsets[i].first, ',', e.offsets[i].second, ']');
    }
    out += "]}";
  }
  out += '\n';
  std::cout << out;
}

int run_tokenize(cli::Args& args) {
  text::Tokenizer tok = text::Tokenizer::from_file(args.required("tokenizer"));
  bool offsets = args.on("offsets"), special = args.on("add-special-tokens");
  SK_CHECK(args.given("text") != args.given("jsonl"), "tokenize: give exactly one of --text or --jsonl");
  if (args.given("text")) {
    print_encoding(tok.encode(args.str("text"), special), offsets);
    return 0;
  }
  for_each_jsonl_value(args.str("jsonl"), [&](const json& v, const std::string& where) {
    SK_CHECK(v.is_string(), where, ": expected a JSON string");
    print_encoding(tok.encode(v.get_ref<const std::string&>(), special), offsets);
  });
  return 0;
}

cli::Registrar reg({"tokenize", "encode text with a model's tokenizer (ids, optional offsets)",
                    "safekey tokenize --tokenizer PATH (--text S | --jsonl FILE) [--offsets] [--add-special-tokens]\n"
                    "Prints one line per input: a JSON array of ids, or with --offsets\n"
                    "{\"ids\":[...],\"offsets\":[[start,end],...]} with code-point offsets (end exclusive).\n"
                    "Each --jsonl line is one JSON string.",
                    run_tokenize});

}  // namespace
}  // namespace safekey
