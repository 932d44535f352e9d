// Normalizers of tokenizer.json ("normalizer"): none, NFC, and Sequence of those. A normalized
// text keeps, for every byte, the byte range of the original text it came from, so token offsets
// map back to the user's text exactly as HF's NormalizedString alignments do (a composed character
// takes the range of its first source character; later ones are consumed in order).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "safekey/util/json.h"

namespace safekey::text {

struct NormalizedText {
  std::string text;
  // align[i] = [start, end) byte range in the original of normalized byte i. Empty = identity:
  // the text was not changed and every byte maps to its own character's range.
  std::vector<std::pair<uint32_t, uint32_t>> align;
  bool identity() const { return align.empty(); }
};

class Normalizer {
 public:
  enum class Kind { kNone, kNfc };
  // Parses tokenizer.json "normalizer" (null, {"type":"NFC"}, {"type":"Sequence",...}).
  static Normalizer from_json(const json& j, const std::string& where);
  bool is_identity() const { return steps_.empty(); }
  // Normalizes `in` (valid UTF-8) into `out`. Returns false, leaving `out` untouched, when no step
  // changes anything: the caller then uses `in` itself (identity alignment).
  bool normalize(std::string_view in, NormalizedText& out) const;

 private:
  std::vector<Kind> steps_;
};

// NFC with HF alignment semantics. Returns false (and leaves `out` untouched) when NFC would not
// change `in`.
bool nfc_with_alignment(std::string_view in, NormalizedText& out);

}  // namespace safekey::text
