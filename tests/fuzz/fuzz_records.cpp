// libFuzzer target for training-record files (data/records*.cpp): the input is the file's content
// (a JSON array or JSONL). It is loaded twice, as training does (strict, spans required) and as
// `safekey annotate` does (skip invalid records, spans optional). Bad input must be a safekey::Error;
// whatever loads must hold: every record's spans lie inside its response on character boundaries,
// the code-point and byte offsets agree, valid + skipped = total.
#include <cstdint>
#include <cstdlib>

#include "safekey/data/records.h"
#include "safekey/data/response.h"
#include "safekey/util/error.h"
#include "fuzz_input_file.h"

using namespace safekey;

namespace {

void check(const data::LoadResult& r) {
  if (r.records.empty() || r.total != static_cast<int64_t>(r.records.size()) + r.skipped) std::abort();
  if (r.skipped > 0 && r.problems.empty()) std::abort();
  for (const auto& rec : r.records) {
    if (rec.response.compare(0, data::kThinkOpen.size(), data::kThinkOpen) != 0) std::abort();
    if (!rec.has_spans) continue;
    const std::string_view s = rec.response;
    if (rec.summary_end_byte <= static_cast<int64_t>(data::kThinkOpen.size()) ||
        rec.next_sentence_end_byte <= rec.summary_end_byte ||
        rec.next_sentence_end_byte > static_cast<int64_t>(s.size()))
      std::abort();
    for (auto [cp, b] : {std::pair{rec.summary_end_idx, rec.summary_end_byte},
                         std::pair{rec.next_sentence_end_idx, rec.next_sentence_end_byte}}) {
      if (!data::is_utf8_boundary(s, static_cast<size_t>(b))) std::abort();
      if (data::byte_of_codepoint(s, static_cast<size_t>(cp)) != static_cast<size_t>(b)) std::abort();
    }
    if (rec.understanding().size() + rec.key_sentence().size() != static_cast<size_t>(rec.next_sentence_end_byte))
      std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::input_file(data, size, ".jsonl");
  try {
    check(data::load_records(path));
  } catch (const Error&) {
  }
  try {
    data::LoadOptions lenient;
    lenient.require_spans = false;
    lenient.skip_invalid = true;
    check(data::load_records(path, lenient));
  } catch (const Error&) {
  }
  return 0;
}
