// `safekey detokenize`: decodes token ids with a model's tokenizer.json, as HF tokenizers does
// (invalid UTF-8 -> U+FFFD). External checks call it: keep the interface stable.
//
//   safekey detokenize --tokenizer PATH (--ids 1,2,3 | --jsonl FILE) [--skip-special-tokens]
//                      [--clean-up-tokenization-spaces auto|true|false] [--raw]
//
// Prints one JSON string per input line (--raw: the text as is). Each --jsonl line is a JSON array
// of ids or an object with "ids" (the output of `safekey tokenize --offsets`).
#include <iostream>

#include "cli.h"
#include "jsonl_input.h"
#include "safekey/text/tokenizer.h"
#include "safekey/util/error.h"

namespace safekey {
namespace {

std::vector<int32_t> ids_from_json(const json& v, const std::string& where) {
  const json& arr = v.is_object() && v.contains("ids") ? v["ids"] : v;
  SK_CHECK(arr.is_array(), where, ": expected a JSON array of ids or an object with 'ids'");
  std::vector<int32_t> ids;
  for (size_t i = 0; i < arr.size(); ++i) {
    SK_CHECK(arr[i].is_number_integer(), where, ": ids[", i, "] is not an integer");
    int64_t id = arr[i].get<int64_t>();
    SK_CHECK(id >= 0 && id <= INT32_MAX, where, ": ids[", i, "] = ", id, " is out of range");
    ids.push_back(static_cast<int32_t>(id));
  }
  return ids;
}

int run_detokenize(cli::Args& args) {
  text::Tokenizer tok = text::Tokenizer::from_file(args.required("tokenizer"));
  bool skip = args.on("skip-special-tokens"), raw = args.on("raw");
  std::string cu = args.str("clean-up-tokenization-spaces");
  SK_CHECK(cu == "auto" || cu == "true" || cu == "false",
           "--clean-up-tokenization-spaces: expected auto, true or false, got '", cu, "'");
  bool clean = cu == "auto" ? tok.config().clean_up_tokenization_spaces : cu == "true";
  auto emit = [&](const std::vector<int32_t>& ids) {
    std::string s = tok.decode(ids, skip, clean);
    if (raw) {
      std::cout << s;
    } else {
      std::cout << json(s).dump() << '\n';
    }
  };
  SK_CHECK(args.given("ids") != args.given("jsonl"), "detokenize: give exactly one of --ids or --jsonl");
  if (args.given("ids")) {
    std::vector<int32_t> ids;
    for (const std::string& s : args.list("ids")) {
      size_t used = 0;
      long long v = -1;
      try {
        v = std::stoll(s, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      SK_CHECK(used == s.size() && v >= 0 && v <= INT32_MAX, "--ids: '", s, "' is not a token id");
      ids.push_back(static_cast<int32_t>(v));
    }
    emit(ids);
    return 0;
  }
  for_each_jsonl_value(args.str("jsonl"),
                       [&](const json& v, const std::string& where) { emit(ids_from_json(v, where)); });
  return 0;
}

cli::Registrar reg({"detokenize", "decode token ids with a model's tokenizer",
                    "safekey detokenize --tokenizer PATH (--ids 1,2,3 | --jsonl FILE) [--skip-special-tokens]\n"
                    "Prints one JSON string per input (--raw: the text as is). --jsonl lines are arrays of ids\n"
                    "or {\"ids\": [...]} objects.",
                    run_detokenize});

}  // namespace
}  // namespace safekey
