// Response normalisation and UTF-8 offset helpers; see response.h for the reference behaviour.
#include "safekey/data/response.h"

namespace safekey::data {

bool is_python_space(char32_t c) {
  if (c >= 0x09 && c <= 0x0D) return true;
  if (c >= 0x1C && c <= 0x20) return true;
  switch (c) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F:
    case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

char32_t utf8_next(std::string_view s, size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  size_t len = b0 < 0x80 ? 1 : (b0 >> 5) == 0x6 ? 2 : (b0 >> 4) == 0xE ? 3 : (b0 >> 3) == 0x1E ? 4 : 0;
  if (len == 0 || i + len > s.size()) {
    ++i;
    return 0xFFFD;
  }
  char32_t c = len == 1 ? b0 : len == 2 ? (b0 & 0x1F) : len == 3 ? (b0 & 0x0F) : (b0 & 0x07);
  for (size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) {
      ++i;
      return 0xFFFD;
    }
    c = (c << 6) | (b & 0x3F);
  }
  // Overlong forms, surrogates and values above U+10FFFF are invalid.
  static const char32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (c < kMin[len] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
    ++i;
    return 0xFFFD;
  }
  i += len;
  return c;
}

void utf8_append(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

bool utf8_valid(std::string_view s, size_t* bad_byte) {
  for (size_t i = 0; i < s.size();) {
    const size_t at = i;
    const char32_t c = utf8_next(s, i);
    // A literal U+FFFD is 3 bytes; a decoding failure consumes exactly one.
    if (c == 0xFFFD && i - at == 1) {
      if (bad_byte) *bad_byte = at;
      return false;
    }
  }
  return true;
}

size_t codepoint_count(std::string_view s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++n) utf8_next(s, i);
  return n;
}

bool is_utf8_boundary(std::string_view s, size_t b) {
  if (b == 0 || b == s.size()) return true;
  if (b > s.size()) return false;
  return (static_cast<unsigned char>(s[b]) & 0xC0) != 0x80;
}

size_t byte_of_codepoint(std::string_view s, size_t cp) {
  size_t i = 0;
  for (size_t n = 0; n < cp; ++n) {
    if (i >= s.size()) return std::string_view::npos;
    utf8_next(s, i);
  }
  return i;
}

size_t codepoint_of_byte(std::string_view s, size_t b) {
  if (b > s.size()) return std::string_view::npos;
  size_t i = 0, n = 0;
  while (i < b) {
    utf8_next(s, i);
    ++n;
  }
  return i == b ? n : std::string_view::npos;
}

std::string_view slice_codepoints(std::string_view s, size_t cp_begin, size_t cp_end) {
  if (cp_end <= cp_begin) return {};
  size_t b = byte_of_codepoint(s, cp_begin);
  if (b == std::string_view::npos) return {};
  size_t e = byte_of_codepoint(s, cp_end);
  if (e == std::string_view::npos) e = s.size();
  return s.substr(b, e - b);
}

namespace {

// Byte offset just past the leading Python whitespace of s.
size_t skip_space(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    size_t j = i;
    if (!is_python_space(utf8_next(s, j))) break;
    i = j;
  }
  return i;
}

// Byte offset just past the last non-whitespace code point of s.
size_t end_of_text(std::string_view s) {
  size_t end = 0;
  for (size_t i = 0; i < s.size();) {
    if (!is_python_space(utf8_next(s, i))) end = i;
  }
  return end;
}

std::string replace_escaped_slash(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && s[i + 1] == '/') {
      out += '/';
      ++i;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

std::string_view python_strip(std::string_view s) {
  const size_t b = skip_space(s);
  s.remove_prefix(b);
  return s.substr(0, end_of_text(s));
}

NormalizedResponse normalize_response_parts(std::string_view raw) {
  const std::string replaced = replace_escaped_slash(raw);
  const std::string_view r = python_strip(replaced);
  NormalizedResponse out;
  // re.search: the first "<think>" and the first "</think>" after it decide the match; the lazy
  // group plus the surrounding \s* make group 1 the stripped text in between.
  constexpr std::string_view kOpen = "<think>", kClose = "</think>";
  const size_t open = r.find(kOpen);
  const size_t close = open == std::string_view::npos ? open : r.find(kClose, open + kOpen.size());
  if (close != std::string_view::npos) {
    out.has_think = true;
    out.thinking = std::string(python_strip(r.substr(open + kOpen.size(), close - open - kOpen.size())));
    out.answer = std::string(python_strip(r.substr(close + kClose.size())));
  } else {
    out.answer = std::string(r);
  }
  out.text.reserve(kThinkOpen.size() + out.thinking.size() + kThinkClose.size() + out.answer.size());
  out.text.append(kThinkOpen).append(out.thinking).append(kThinkClose).append(out.answer);
  out.thinking_begin = kThinkOpen.size();
  out.thinking_end = out.thinking_begin + codepoint_count(out.thinking);
  return out;
}

std::string normalize_response(std::string_view raw) { return normalize_response_parts(raw).text; }

}  // namespace safekey::data
