// The template parser: token helpers, statements and parse_template (expressions are in
// jinja_parser_expr.cpp).
#include "safekey/text/jinja_parser.h"

#include <algorithm>

#include "safekey/text/jinja_parser_impl.h"
#include "safekey/util/error.h"

namespace safekey::text::jinja {
namespace detail {

Body Parser::parse_all() {
  Body body = subparse({});
  if (cur().type != Tok::Eof) error(cur(), cat("unexpected '", describe(cur()), "'"));
  return body;
}

std::string Parser::describe(const Token& t) {
  switch (t.type) {
    case Tok::Eof: return "end of template";
    case Tok::BlockEnd: return "%}";
    case Tok::VarEnd: return "}}";
    case Tok::BlockBegin: return "{%";
    case Tok::VarBegin: return "{{";
    case Tok::Data: return "text";
    case Tok::String: return "string literal";
    default: return t.text;
  }
}

void Parser::error(const Token& t, const std::string& msg) const {
  fail(name_, ":", t.line, ":", t.col, ": ", msg);
}

void Parser::expect_op(const char* op) {
  if (!is_op(op)) error(cur(), cat("expected '", op, "', got '", describe(cur()), "'"));
  next();
}

void Parser::expect_name(const char* n) {
  if (!is_name(n)) error(cur(), cat("expected '", n, "', got '", describe(cur()), "'"));
  next();
}

std::string Parser::expect_identifier() {
  if (cur().type != Tok::Name) error(cur(), cat("expected a name, got '", describe(cur()), "'"));
  return next().text;
}

void Parser::expect_block_end() {
  if (cur().type != Tok::BlockEnd) error(cur(), cat("expected '%}', got '", describe(cur()), "'"));
  next();
}

ExprPtr Parser::node(Expr::K k, const Token& at) {
  auto e = std::make_unique<Expr>();
  e->kind = k;
  e->line = at.line;
  e->col = at.col;
  return e;
}

// ---- statements -----------------------------------------------------------------------------------
Body Parser::subparse(const std::vector<std::string>& ends) {
  Body body;
  while (cur().type != Tok::Eof) {
    const Token& t = cur();
    if (t.type == Tok::Data) {
      auto s = std::make_unique<Stmt>();
      s->kind = Stmt::K::Data;
      s->text = t.text;
      s->line = t.line;
      s->col = t.col;
      body.push_back(std::move(s));
      next();
    } else if (t.type == Tok::VarBegin) {
      next();
      auto s = std::make_unique<Stmt>();
      s->kind = Stmt::K::Output;
      s->line = t.line;
      s->col = t.col;
      s->expr = parse_tuple(true);
      if (cur().type != Tok::VarEnd) error(cur(), cat("expected '}}', got '", describe(cur()), "'"));
      next();
      body.push_back(std::move(s));
    } else if (t.type == Tok::BlockBegin) {
      next();
      if (cur().type != Tok::Name) error(cur(), "expected a statement name after '{%'");
      if (std::find(ends.begin(), ends.end(), cur().text) != ends.end()) return body;
      body.push_back(parse_statement());
    } else {
      error(t, cat("unexpected '", describe(t), "'"));
    }
  }
  if (!ends.empty()) {
    std::string want;
    for (const auto& e : ends) want += (want.empty() ? "'" : " or '") + e + "'";
    error(cur(), cat("unexpected end of template, expected ", want));
  }
  return body;
}

StmtPtr Parser::stmt(Stmt::K k, const Token& at) {
  auto s = std::make_unique<Stmt>();
  s->kind = k;
  s->line = at.line;
  s->col = at.col;
  return s;
}

StmtPtr Parser::parse_statement() {
  if (depth_ > 300) error(cur(), "statements nested too deeply");
  struct Depth {
    int& d;
    explicit Depth(int& x) : d(x) { ++d; }
    ~Depth() { --d; }
  } guard(depth_);
  const Token& t = cur();
  const std::string& n = t.text;
  if (n == "if") return parse_if();
  if (n == "for") return parse_for();
  if (n == "set") return parse_set();
  if (n == "macro") return parse_macro();
  if (n == "with") return parse_with();
  if (n == "break" || n == "continue") {
    next();
    expect_block_end();
    return stmt(n == "break" ? Stmt::K::Break : Stmt::K::Continue, t);
  }
  if (n == "generation") {
    next();
    expect_block_end();
    auto s = stmt(Stmt::K::Generation, t);
    s->body = subparse({"endgeneration"});
    next();
    expect_block_end();
    return s;
  }
  error(t, cat("unsupported template construct '", n, "'"));
}

StmtPtr Parser::parse_if() {
  auto s = stmt(Stmt::K::If, cur());
  next();
  ExprPtr test = parse_tuple(false);
  expect_block_end();
  while (true) {
    Body body = subparse({"elif", "else", "endif"});
    s->branches.emplace_back(std::move(test), std::move(body));
    std::string kw = next().text;
    if (kw == "elif") {
      test = parse_tuple(false);
      expect_block_end();
    } else if (kw == "else") {
      expect_block_end();
      s->branches.emplace_back(nullptr, subparse({"endif"}));
      next();
      expect_block_end();
      break;
    } else {
      expect_block_end();
      break;
    }
  }
  return s;
}

Target Parser::parse_target(bool allow_attr) {
  Target tg;
  const Token& at = cur();
  tg.names.push_back(expect_identifier());
  if (allow_attr && is_op(".")) {
    next();
    tg.attr = expect_identifier();
    return tg;
  }
  while (is_op(",")) {
    next();
    tg.tuple = true;
    if (cur().type != Tok::Name) break;
    tg.names.push_back(expect_identifier());
  }
  for (const auto& nm : tg.names)
    if (nm == "true" || nm == "false" || nm == "none" || nm == "True" || nm == "False" || nm == "None")
      error(at, cat("cannot assign to '", nm, "'"));
  return tg;
}

StmtPtr Parser::parse_for() {
  auto s = stmt(Stmt::K::For, cur());
  next();
  s->target = parse_target(false);
  expect_name("in");
  s->expr = parse_tuple(false);
  if (is_name("if")) {
    next();
    s->loop_filter = parse_expression(true);
  }
  if (is_name("recursive")) error(cur(), "recursive loops are not supported");
  expect_block_end();
  s->body = subparse({"endfor", "else"});
  if (next().text == "else") {
    expect_block_end();
    s->else_body = subparse({"endfor"});
    next();
  }
  expect_block_end();
  return s;
}

StmtPtr Parser::parse_set() {
  const Token& at = cur();
  next();
  Target tg = parse_target(true);
  if (is_op("=")) {
    next();
    auto s = stmt(Stmt::K::Set, at);
    s->target = std::move(tg);
    s->expr = parse_tuple(true);
    expect_block_end();
    return s;
  }
  if (is_op("|")) error(cur(), "filtered block assignments are not supported");
  expect_block_end();
  auto s = stmt(Stmt::K::SetBlock, at);
  s->target = std::move(tg);
  s->body = subparse({"endset"});
  next();
  expect_block_end();
  return s;
}

StmtPtr Parser::parse_macro() {
  auto s = stmt(Stmt::K::Macro, cur());
  next();
  s->name = expect_identifier();
  expect_op("(");
  while (!is_op(")")) {
    if (!s->params.empty()) expect_op(",");
    if (is_op(")")) break;
    std::string pname = expect_identifier();
    ExprPtr dflt;
    if (is_op("=")) {
      next();
      dflt = parse_expression(true);
    }
    s->params.emplace_back(pname, std::move(dflt));
  }
  next();
  expect_block_end();
  s->body = subparse({"endmacro"});
  next();
  expect_block_end();
  return s;
}

StmtPtr Parser::parse_with() {
  auto s = stmt(Stmt::K::With, cur());
  next();
  while (cur().type != Tok::BlockEnd) {
    if (!s->params.empty()) expect_op(",");
    std::string nm = expect_identifier();
    expect_op("=");
    s->params.emplace_back(nm, parse_expression(true));
  }
  expect_block_end();
  s->body = subparse({"endwith"});
  next();
  expect_block_end();
  return s;
}

}  // namespace detail

Body parse_template(const std::vector<Token>& tokens, const std::string& name) {
  return detail::Parser(tokens, name).parse_all();
}

}  // namespace safekey::text::jinja
