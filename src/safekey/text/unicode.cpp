#include "safekey/text/unicode.h"

#include <oniguruma.h>

#include <array>
#include <atomic>
#include <memory>
#include <mutex>

#include "safekey/util/error.h"

namespace safekey::text {

void utf8_append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Length of the valid UTF-8 sequence at s[i], or 0 when it is invalid. `max_prefix` gets the
// length of the longest valid prefix of an invalid sequence (for lossy decoding).
static size_t utf8_valid_len(const unsigned char* s, size_t n, size_t i, size_t& max_prefix) {
  unsigned char c = s[i];
  max_prefix = 1;
  if (c < 0x80) return 1;
  size_t need;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    need = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  for (size_t k = 1; k < need; ++k) {
    if (i + k >= n) return 0;
    unsigned char b = s[i + k];
    unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (b < l || b > h) return 0;
    max_prefix = k + 1;
  }
  return need;
}

size_t utf8_find_invalid(std::string_view s) {
  auto p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0, pre = 0;
  while (i < n) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    size_t len = utf8_valid_len(p, n, i, pre);
    if (len == 0) return i;
    i += len;
  }
  return std::string_view::npos;
}

void utf8_check(std::string_view s, const std::string& where) {
  size_t bad = utf8_find_invalid(s);
  if (bad != std::string_view::npos) fail(where, ": invalid UTF-8 at byte ", bad);
}

std::string utf8_lossy(std::string_view bytes) {
  auto p = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t n = bytes.size(), i = 0, pre = 0;
  std::string out;
  out.reserve(n);
  while (i < n) {
    size_t len = utf8_valid_len(p, n, i, pre);
    if (len == 0) {
      out += "\xEF\xBF\xBD";
      i += pre;
    } else {
      out.append(bytes.data() + i, len);
      i += len;
    }
  }
  return out;
}

size_t utf8_count(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += !utf8_is_continuation(c);
  return n;
}

namespace {
struct ByteTables {
  std::array<uint32_t, 256> to_cp{};
  std::array<int16_t, 324> from_cp{};  // stand-ins are < 324
  ByteTables() {
    from_cp.fill(-1);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      to_cp[b] = printable ? b : 256 + n++;
      from_cp[to_cp[b]] = static_cast<int16_t>(b);
    }
  }
};
const ByteTables& byte_tables() {
  static const ByteTables t;
  return t;
}
}  // namespace

uint32_t byte_to_unicode(uint8_t b) { return byte_tables().to_cp[b]; }
int unicode_to_byte(uint32_t cp) { return cp < 324 ? byte_tables().from_cp[cp] : -1; }

std::string bytes_to_byte_level(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) utf8_append(out, byte_to_unicode(b));
  return out;
}

bool byte_level_to_bytes(std::string_view s, std::string& out) {
  auto p = reinterpret_cast<const unsigned char*>(s.data());
  size_t i = 0, len = 0;
  while (i < s.size()) {
    uint32_t cp = utf8_decode(p + i, len);
    int b = unicode_to_byte(cp);
    if (b < 0) return false;
    out.push_back(static_cast<char>(b));
    i += len;
  }
  return true;
}

// ---- character classes from Oniguruma's tables, computed lazily per 256-code-point block ----
namespace {
constexpr uint32_t kBlocks = 0x110000 / 256;
struct ClassTable {
  std::mutex mu;
  std::array<std::atomic<bool>, kBlocks> ready{};
  std::array<std::unique_ptr<uint8_t[]>, kBlocks> blocks;
  OnigCtype letter = 0, number = 0, mark = 0, punct = 0, symbol = 0;
  ClassTable() {
    OnigEncoding enc = ONIG_ENCODING_UTF8;
    onig_initialize(&enc, 1);
    auto ctype = [&](const char* name) {
      auto p = reinterpret_cast<const OnigUChar*>(name);
      int t = ONIGENC_PROPERTY_NAME_TO_CTYPE(enc, const_cast<OnigUChar*>(p),
                                             const_cast<OnigUChar*>(p) + std::char_traits<char>::length(name));
      SK_CHECK(t >= 0, "oniguruma: unknown Unicode property ", name);
      return static_cast<OnigCtype>(t);
    };
    letter = ctype("L");
    number = ctype("N");
    mark = ctype("M");
    punct = ctype("P");
    symbol = ctype("S");
  }
  const uint8_t* block(uint32_t b) {
    if (!ready[b].load(std::memory_order_acquire)) {
      std::lock_guard<std::mutex> lock(mu);
      if (!ready[b].load(std::memory_order_relaxed)) {
        OnigEncoding enc = ONIG_ENCODING_UTF8;
        auto t = std::make_unique<uint8_t[]>(256);
        for (uint32_t k = 0; k < 256; ++k) {
          OnigCodePoint cp = b * 256 + k;
          uint8_t c = 0;
          if (ONIGENC_IS_CODE_CTYPE(enc, cp, letter)) c |= kLetter;
          if (ONIGENC_IS_CODE_CTYPE(enc, cp, number)) c |= kNumber;
          if (ONIGENC_IS_CODE_CTYPE(enc, cp, ONIGENC_CTYPE_SPACE)) c |= kSpace;
          if (ONIGENC_IS_CODE_CTYPE(enc, cp, mark)) c |= kMark;
          if (ONIGENC_IS_CODE_CTYPE(enc, cp, punct)) c |= kPunct;
          if (ONIGENC_IS_CODE_CTYPE(enc, cp, symbol)) c |= kSymbol;
          t[k] = c;
        }
        blocks[b] = std::move(t);
        ready[b].store(true, std::memory_order_release);
      }
    }
    return blocks[b].get();
  }
};
ClassTable& class_table() {
  static ClassTable t;
  return t;
}
}  // namespace

uint8_t char_class(uint32_t cp) {
  if (cp >= 0x110000) return 0;
  static thread_local const uint8_t* ascii = class_table().block(0);
  if (cp < 256) return ascii[cp];
  return class_table().block(cp >> 8)[cp & 0xFF];
}

bool is_word_char(uint32_t cp) { return cp == '_' || (char_class(cp) & (kLetter | kNumber | kMark)); }

}  // namespace safekey::text
