#include "safekey/text/jinja_lexer.h"

#include <algorithm>
#include <cstdlib>

#include "safekey/text/jinja_pystr.h"
#include "safekey/util/error.h"

namespace safekey::text::jinja {
namespace {

class Lexer {
 public:
  Lexer(const std::string& source, const std::string& name) : name_(name) {
    // Newlines to "\n", then drop one trailing newline (keep_trailing_newline=False).
    src_.reserve(source.size());
    for (size_t i = 0; i < source.size(); ++i) {
      if (source[i] == '\r') {
        src_ += '\n';
        if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
      } else {
        src_ += source[i];
      }
    }
    if (!src_.empty() && src_.back() == '\n') src_.pop_back();
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i)
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
  }

  std::vector<Token> run() {
    size_t pos = 0;
    bool line_starting = true;
    while (pos < src_.size()) {
      size_t tag = find_tag(pos);
      if (tag == std::string::npos) {
        emit_data(src_.substr(pos), pos);
        break;
      }
      char kind = src_[tag + 1];  // '{', '%' or '#'
      char sign = tag + 2 < src_.size() && (src_[tag + 2] == '-' || src_[tag + 2] == '+') ? src_[tag + 2] : 0;
      std::string text = src_.substr(pos, tag - pos);
      text = apply_left_strip(text, sign, kind != '{', line_starting);
      emit_data(text, pos);
      size_t after = tag + 2 + (sign ? 1 : 0);
      if (kind == '#') {
        pos = lex_comment(tag, after);
      } else if (kind == '%' && is_raw_begin(after)) {
        pos = lex_raw(tag, after);
      } else {
        pos = lex_tag(tag, after, kind == '%');
      }
      line_starting = pos > 0 && src_[pos - 1] == '\n';
    }
    push(Tok::Eof, "", src_.size());
    return std::move(tokens_);
  }

 private:
  std::string name_;
  std::string src_;
  std::vector<size_t> line_starts_;
  std::vector<Token> tokens_;

  void position(size_t off, int& line, int& col) const {
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), off);
    size_t ls = *(it - 1);
    line = int(it - line_starts_.begin());
    col = 1 + int(count_code_points(std::string_view(src_).substr(ls, off - ls)));
  }

  [[noreturn]] void error(size_t off, const std::string& msg) const {
    int line, col;
    position(std::min(off, src_.size()), line, col);
    fail(name_, ":", line, ":", col, ": ", msg);
  }

  Token& push(Tok t, std::string text, size_t off) {
    Token tok;
    tok.type = t;
    tok.text = std::move(text);
    position(off, tok.line, tok.col);
    tokens_.push_back(std::move(tok));
    return tokens_.back();
  }

  void emit_data(const std::string& text, size_t off) {
    if (!text.empty()) push(Tok::Data, text, off);
  }

  size_t find_tag(size_t pos) const {
    for (size_t i = pos; i + 1 < src_.size(); ++i)
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    return std::string::npos;
  }

  bool space_at(size_t i, size_t* len) const {
    std::vector<uint32_t> cp = decode_utf8(std::string_view(src_).substr(i, std::min<size_t>(4, src_.size() - i)));
    if (cp.empty() || !py_isspace(cp[0])) return false;
    std::string enc;
    append_utf8(enc, cp[0]);
    *len = enc.size();
    return true;
  }
  size_t skip_space(size_t i) const {
    size_t len;
    while (i < src_.size() && space_at(i, &len)) i += len;
    return i;
  }

  // "{%-" strips all whitespace before the tag; lstrip_blocks strips spaces/tabs from the start
  // of the line up to a block or comment tag unless the tag says "+".
  std::string apply_left_strip(const std::string& text, char sign, bool is_block, bool line_starting) const {
    if (sign == '-') return py_strip(text, std::nullopt, false, true);
    if (sign == '+' || !is_block) return text;
    size_t l_pos = text.rfind('\n');
    l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
    if (l_pos == 0 && !line_starting) return text;
    std::string tail = text.substr(l_pos);
    if (tail.empty()) return text;
    for (uint32_t cp : decode_utf8(tail))
      if (!py_isspace(cp)) return text;
    return text.substr(0, l_pos);
  }

  // After a block end "%}" (or comment end): "-" eats all following whitespace, "+" nothing, and
  // plain ends eat one "\n" (trim_blocks).
  size_t after_block_end(size_t end_pos, char sign) const {
    if (sign == '-') return skip_space(end_pos);
    if (sign == '+') return end_pos;
    return end_pos < src_.size() && src_[end_pos] == '\n' ? end_pos + 1 : end_pos;
  }

  size_t lex_comment(size_t tag, size_t after) {
    for (size_t i = after; i + 1 < src_.size(); ++i) {
      if ((src_[i] == '-' || src_[i] == '+') && src_.compare(i + 1, 2, "#}") == 0)
        return after_block_end(i + 3, src_[i]);
      if (src_.compare(i, 2, "#}") == 0) return after_block_end(i + 2, 0);
    }
    error(tag, "missing end of comment tag");
  }

  bool is_raw_begin(size_t after) const {
    size_t i = skip_space(after);
    if (src_.compare(i, 3, "raw") != 0) return false;
    size_t j = skip_space(i + 3);
    return src_.compare(j, 2, "%}") == 0 || src_.compare(j, 3, "-%}") == 0;
  }

  size_t lex_raw(size_t tag, size_t after) {
    size_t i = skip_space(skip_space(after) + 3);
    size_t pos = src_[i] == '-' ? skip_space(i + 3) : i + 2;
    // Find "{%[-+]? endraw [-+]?%}".
    for (size_t k = pos; k + 1 < src_.size(); ++k) {
      if (src_.compare(k, 2, "{%") != 0) continue;
      size_t m = k + 2;
      char sign = (m < src_.size() && (src_[m] == '-' || src_[m] == '+')) ? src_[m] : 0;
      if (sign) ++m;
      m = skip_space(m);
      if (src_.compare(m, 6, "endraw") != 0) continue;
      m = skip_space(m + 6);
      char end_sign = 0;
      if (m < src_.size() && (src_[m] == '-' || src_[m] == '+')) end_sign = src_[m++];
      if (src_.compare(m, 2, "%}") != 0) continue;
      std::string text = apply_left_strip(src_.substr(pos, k - pos), sign, true, pos > 0 && src_[pos - 1] == '\n');
      emit_data(text, pos);
      return after_block_end(m + 2, end_sign);
    }
    error(tag, "missing end of raw directive");
  }

  size_t lex_tag(size_t tag, size_t i, bool block) {
    push(block ? Tok::BlockBegin : Tok::VarBegin, "", tag);
    std::vector<char> balance;
    while (true) {
      if (i >= src_.size()) error(tag, block ? "unexpected end of template, expected '%}'" : "unexpected end of template, expected '}}'");
      if (balance.empty()) {
        if (block) {
          if ((src_[i] == '-' || src_[i] == '+') && src_.compare(i + 1, 2, "%}") == 0) {
            push(Tok::BlockEnd, "", i);
            return after_block_end(i + 3, src_[i]);
          }
          if (src_.compare(i, 2, "%}") == 0) {
            push(Tok::BlockEnd, "", i);
            return after_block_end(i + 2, 0);
          }
        } else {
          if (src_[i] == '-' && src_.compare(i + 1, 2, "}}") == 0) {
            push(Tok::VarEnd, "", i);
            return skip_space(i + 3);
          }
          if (src_.compare(i, 2, "}}") == 0) {
            push(Tok::VarEnd, "", i);
            return i + 2;
          }
        }
      }
      size_t sp;
      if (space_at(i, &sp)) {
        i += sp;
        continue;
      }
      char c = src_[i];
      if (c == '\'' || c == '"') {
        i = lex_string(i);
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        i = lex_number(i);
      } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t j = i;
        while (j < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[j])) || src_[j] == '_')) ++j;
        push(Tok::Name, src_.substr(i, j - i), i);
        i = j;
      } else {
        static const char* ops[] = {"//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]",
                                    "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";"};
        const char* op = nullptr;
        for (const char* o : ops)
          if (src_.compare(i, std::char_traits<char>::length(o), o) == 0) {
            op = o;
            break;
          }
        if (!op) error(i, cat("unexpected character '", std::string(1, c), "'"));
        std::string o = op;
        if (o == "(" || o == "[" || o == "{") {
          balance.push_back(o == "(" ? ')' : o == "[" ? ']' : '}');
        } else if (o == ")" || o == "]" || o == "}") {
          if (balance.empty()) error(i, cat("unexpected '", o, "'"));
          if (balance.back() != o[0]) error(i, cat("unexpected '", o, "', expected '", std::string(1, balance.back()), "'"));
          balance.pop_back();
        }
        push(Tok::Op, o, i);
        i += o.size();
      }
    }
  }

  size_t lex_string(size_t start) {
    char q = src_[start];
    std::string out;
    size_t i = start + 1;
    while (true) {
      if (i >= src_.size()) error(start, "unterminated string literal");
      char c = src_[i];
      if (c == q) break;
      if (c != '\\') {
        out += c;
        ++i;
        continue;
      }
      if (i + 1 >= src_.size()) error(start, "unterminated string literal");
      char e = src_[i + 1];
      i += 2;
      auto hex = [&](int n) -> uint32_t {
        if (i + size_t(n) > src_.size()) error(start, "truncated \\x/\\u escape in string literal");
        std::string h = src_.substr(i, size_t(n));
        for (char ch : h)
          if (!std::isxdigit(static_cast<unsigned char>(ch))) error(start, "bad \\x/\\u escape in string literal");
        i += size_t(n);
        return uint32_t(std::strtoul(h.c_str(), nullptr, 16));
      };
      switch (e) {
        case '\n': break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'v': out += '\v'; break;
        case 'x': append_utf8(out, hex(2)); break;
        case 'u': append_utf8(out, hex(4)); break;
        case 'U': append_utf8(out, hex(8)); break;
        default:
          if (e >= '0' && e <= '7') {
            uint32_t v = uint32_t(e - '0');
            for (int k = 0; k < 2 && i < src_.size() && src_[i] >= '0' && src_[i] <= '7'; ++k, ++i)
              v = v * 8 + uint32_t(src_[i] - '0');
            append_utf8(out, v);
          } else {
            out += '\\';  // Python keeps unknown escapes as written
            out += e;
          }
      }
    }
    push(Tok::String, out, start);
    return i + 1;
  }

  size_t digits(size_t i, bool allow_underscore = true) const {
    size_t j = i;
    while (j < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[j])) ||
                               (allow_underscore && src_[j] == '_' && j > i && j + 1 < src_.size() &&
                                std::isdigit(static_cast<unsigned char>(src_[j + 1])))))
      ++j;
    return j;
  }

  size_t lex_number(size_t i) {
    auto clean = [](std::string s) {
      s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
      return s;
    };
    bool after_dot = i > 0 && src_[i - 1] == '.';
    size_t j = digits(i);
    if (!after_dot) {
      size_t k = j;
      bool is_float = false;
      if (k + 1 < src_.size() && src_[k] == '.' && std::isdigit(static_cast<unsigned char>(src_[k + 1]))) {
        k = digits(k + 1);
        is_float = true;
      }
      if (k < src_.size() && (src_[k] == 'e' || src_[k] == 'E')) {
        size_t m = k + 1;
        if (m < src_.size() && (src_[m] == '+' || src_[m] == '-')) ++m;
        if (m < src_.size() && std::isdigit(static_cast<unsigned char>(src_[m]))) {
          k = digits(m);
          is_float = true;
        }
      }
      if (is_float) {
        Token& t = push(Tok::Float, src_.substr(i, k - i), i);
        t.fval = std::strtod(clean(t.text).c_str(), nullptr);
        return k;
      }
    }
    Token& t = push(Tok::Int, src_.substr(i, j - i), i);
    t.ival = std::strtoll(clean(t.text).c_str(), nullptr, 10);
    return j;
  }
};

}  // namespace

std::vector<Token> lex_template(const std::string& source, const std::string& name) {
  return Lexer(source, name).run();
}

}  // namespace safekey::text::jinja
