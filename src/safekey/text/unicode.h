// Unicode helpers for the tokenizer: UTF-8 decoding and validation, the GPT-2 byte-level alphabet
// (bytes_to_unicode), and character classes with the same Unicode data the regex engine uses
// (Oniguruma's \p{L}, \p{N}, \s), so the hand-written pre-tokenizer agrees with the regex path.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace safekey::text {

// Decodes the code point starting at s[i] (s must be valid UTF-8); sets `len` to its byte length.
inline uint32_t utf8_decode(const unsigned char* s, size_t& len) {
  unsigned char c = s[0];
  if (c < 0x80) { len = 1; return c; }
  if (c < 0xE0) { len = 2; return ((c & 0x1Fu) << 6) | (s[1] & 0x3Fu); }
  if (c < 0xF0) { len = 3; return ((c & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu); }
  len = 4;
  return ((c & 0x07u) << 18) | ((s[1] & 0x3Fu) << 12) | ((s[2] & 0x3Fu) << 6) | (s[3] & 0x3Fu);
}
inline size_t utf8_len(unsigned char lead) {
  return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}
inline bool utf8_is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

void utf8_append(std::string& out, uint32_t cp);

// Byte offset of the first invalid UTF-8 sequence in s, or npos when s is valid (overlongs,
// surrogates and code points above U+10FFFF are invalid).
size_t utf8_find_invalid(std::string_view s);
// Throws Error "<where>: invalid UTF-8 at byte N" when s is not valid UTF-8.
void utf8_check(std::string_view s, const std::string& where);
// Lossy decoding as Rust's String::from_utf8_lossy: every maximal invalid subpart -> U+FFFD.
std::string utf8_lossy(std::string_view bytes);
// Number of code points in valid UTF-8 text.
size_t utf8_count(std::string_view s);

// GPT-2 bytes_to_unicode: byte -> code point of its printable stand-in, and back (-1 = none).
uint32_t byte_to_unicode(uint8_t b);
int unicode_to_byte(uint32_t cp);
// Maps every byte to its stand-in character ("Ġ" for ' ').
std::string bytes_to_byte_level(std::string_view bytes);
// Inverse of bytes_to_byte_level; false when a character is outside the alphabet.
bool byte_level_to_bytes(std::string_view s, std::string& out);

// Character classes (bit flags) as Oniguruma defines them for UTF-8 with its own Unicode tables.
enum CharClass : uint8_t {
  kLetter = 1,   // \p{L}
  kNumber = 2,   // \p{N}
  kSpace = 4,    // \s (Unicode White_Space)
  kMark = 8,     // \p{M}
  kPunct = 16,   // \p{P}
  kSymbol = 32,  // \p{S}
};
uint8_t char_class(uint32_t cp);

// Rust's char::is_whitespace (White_Space), used by added-token lstrip/rstrip.
inline bool is_white_space(uint32_t cp) { return (char_class(cp) & kSpace) != 0; }
// Letters, numbers, marks and '_' count as "word" characters for single_word added tokens.
bool is_word_char(uint32_t cp);

}  // namespace safekey::text
