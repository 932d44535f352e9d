// Template lexer with the whitespace rules transformers renders chat templates with:
// newlines normalised to "\n", one trailing newline dropped (keep_trailing_newline=False),
// trim_blocks (the first "\n" after a block or comment tag is removed), lstrip_blocks (spaces and
// tabs from the start of a line up to a block or comment tag are removed), and the manual controls
// "{%-", "-%}", "{{-", "-}}", "{#-", "-#}" (strip all whitespace on that side) and "{%+", "+%}"
// (keep it). Produces Jinja's token stream: data, block/variable begin and end, names, strings,
// numbers, operators; every token carries its template line and column.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace safekey::text::jinja {

enum class Tok { Data, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, Eof };

struct Token {
  Tok type = Tok::Eof;
  std::string text;  // data text, name, decoded string literal, operator
  int64_t ival = 0;
  double fval = 0.0;
  int line = 1, col = 1;
};

// Throws Error "<name>:LINE:COL: ..." on malformed input (unclosed tags, strings, brackets).
std::vector<Token> lex_template(const std::string& source, const std::string& name);

}  // namespace safekey::text::jinja
