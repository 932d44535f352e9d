// Hand-written matcher for the Qwen2/Qwen3 and Llama-3 Split regex
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,D}| ?[^\s\p{L}\p{N}]+[\r\n]*|
//   \s*[\r\n]+|\s+(?!\S)|\s+
// with Oniguruma's leftmost-first alternation, evaluated alternative by alternative at each
// position. Character classes come from Oniguruma's own tables (unicode.h). The regex path stays
// the reference; tests compare the two on the conformance strings.
#include <cstring>

#include "safekey/text/pre_tokenizer.h"
#include "safekey/text/unicode.h"

namespace safekey::text {
namespace {

struct Cursor {
  const unsigned char* p;
  uint32_t end;
  uint32_t at(uint32_t i, uint32_t& len) const {
    size_t l = 0;
    uint32_t c = utf8_decode(p + i, l);
    len = static_cast<uint32_t>(l);
    return c;
  }
};

inline uint8_t cls(uint32_t c) {
  if (c < 0x80) {
    // ASCII fast path: letters, digits, White_Space (\t..\r and space)
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return kLetter;
    if (c >= '0' && c <= '9') return kNumber;
    if (c == ' ' || (c >= 0x09 && c <= 0x0D)) return kSpace;
    return 0;
  }
  return char_class(c);
}

// Length in bytes of a case-insensitive contraction suffix after "'" at i, or 0.
uint32_t contraction(const Cursor& t, uint32_t i) {
  auto lower_at = [&](uint32_t k, uint32_t& len) -> uint32_t {
    if (k >= t.end) {
      len = 0;
      return 0;
    }
    uint32_t c = t.at(k, len);
    if (c == 0x17F) return 's';  // LATIN SMALL LETTER LONG S folds to 's'
    if (c == 0x212A) return 'k';  // KELVIN SIGN folds to 'k'
    if (c < 0x80 && c >= 'A' && c <= 'Z') return c + 32;
    return c;
  };
  uint32_t l1 = 0, l2 = 0;
  uint32_t a = lower_at(i, l1);
  if (l1 == 0) return 0;
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return l1;
  uint32_t b = lower_at(i + l1, l2);
  if (l2 == 0) return 0;
  if ((a == 'r' || a == 'v') && b == 'e') return l1 + l2;
  if (a == 'l' && b == 'l') return l1 + l2;
  return 0;
}

}  // namespace

void split_qwen_llama(std::string_view text, uint32_t start, uint32_t end, int digits_max,
                      std::vector<std::pair<uint32_t, uint32_t>>& out) {
  Cursor t{reinterpret_cast<const unsigned char*>(text.data()), end};
  uint32_t i = start;
  while (i < end) {
    uint32_t len0 = 0;
    uint32_t c0 = t.at(i, len0);
    uint8_t k0 = cls(c0);
    uint32_t j = i + len0;
    // 1. contractions
    if (c0 == '\'' && j < end) {
      uint32_t n = contraction(t, j);
      if (n) {
        out.push_back({i, j + n});
        i = j + n;
        continue;
      }
    }
    // 2. [^\r\n\p{L}\p{N}]?\p{L}+
    {
      uint32_t k = i;
      bool ok = false;
      if (k0 & kLetter) {
        ok = true;
      } else if (c0 != '\r' && c0 != '\n' && !(k0 & kNumber) && j < end) {
        uint32_t l = 0;
        if (cls(t.at(j, l)) & kLetter) {
          ok = true;
          k = j;
        }
      }
      if (ok) {
        uint32_t l = 0;
        while (k < end && (cls(t.at(k, l)) & kLetter)) k += l;
        out.push_back({i, k});
        i = k;
        continue;
      }
    }
    // 3. \p{N}{1,D}
    if (k0 & kNumber) {
      uint32_t k = j, l = 0;
      for (int n = 1; n < digits_max && k < end && (cls(t.at(k, l)) & kNumber); ++n) k += l;
      out.push_back({i, k});
      i = k;
      continue;
    }
    // 4.  ?[^\s\p{L}\p{N}]+[\r\n]*
    {
      uint32_t k = c0 == ' ' ? j : i;
      uint32_t l = 0;
      if (k < end && !(cls(t.at(k, l)) & (kSpace | kLetter | kNumber))) {
        while (k < end && !(cls(t.at(k, l)) & (kSpace | kLetter | kNumber))) k += l;
        while (k < end && (text[k] == '\r' || text[k] == '\n')) ++k;
        out.push_back({i, k});
        i = k;
        continue;
      }
    }
    // c0 is whitespace here. W = the maximal whitespace run [i, w_end).
    uint32_t w_end = i, last_nl_end = 0, last_start = i, l = 0;
    while (w_end < end) {
      uint32_t c = t.at(w_end, l);
      if (!(cls(c) & kSpace)) break;
      if (c == '\r' || c == '\n') last_nl_end = w_end + l;
      last_start = w_end;
      w_end += l;
    }
    // 5. \s*[\r\n]+
    if (last_nl_end) {
      out.push_back({i, last_nl_end});
      i = last_nl_end;
      continue;
    }
    // 6. \s+(?!\S)   7. \s+
    uint32_t e = (w_end == end || last_start == i) ? w_end : last_start;
    out.push_back({i, e});
    i = e;
  }
}

}  // namespace safekey::text
