// The template parser class (internal), shared by jinja_parser.cpp and jinja_parser_expr.cpp.
#pragma once
#include <algorithm>
#include <string>
#include <vector>

#include "safekey/text/jinja_ast.h"
#include "safekey/text/jinja_lexer.h"

namespace safekey::text::jinja::detail {

class Parser {
 public:
  Parser(const std::vector<Token>& toks, const std::string& name) : t_(toks), name_(name) {}

  Body parse_all();

 private:
  const std::vector<Token>& t_;
  std::string name_;
  size_t p_ = 0;
  int depth_ = 0;  // expression and statement nesting (guards the stack)

  const Token& cur() const { return t_[p_]; }
  const Token& peek(size_t k = 1) const { return t_[std::min(p_ + k, t_.size() - 1)]; }
  const Token& next() { return t_[p_ < t_.size() - 1 ? p_++ : p_]; }

  static std::string describe(const Token& t);
  [[noreturn]] void error(const Token& t, const std::string& msg) const;
  bool is_op(const char* op) const { return cur().type == Tok::Op && cur().text == op; }
  bool is_name(const char* n) const { return cur().type == Tok::Name && cur().text == n; }
  void expect_op(const char* op);
  void expect_name(const char* n);
  std::string expect_identifier();
  void expect_block_end();
  ExprPtr node(Expr::K k, const Token& at);

  // ---- statements (jinja_parser.cpp) ------------------------------------------------------------
  // Parses until a block tag whose name is in `ends` (left unconsumed: p_ points at its name).
  Body subparse(const std::vector<std::string>& ends);
  StmtPtr stmt(Stmt::K k, const Token& at);
  StmtPtr parse_statement();
  StmtPtr parse_if();
  Target parse_target(bool allow_attr);
  StmtPtr parse_for();
  StmtPtr parse_set();
  StmtPtr parse_macro();
  StmtPtr parse_with();

  // ---- expressions (jinja_parser_expr.cpp) ------------------------------------------------------
  ExprPtr parse_tuple(bool with_condexpr, bool explicit_parens = false);
  ExprPtr parse_expression(bool with_condexpr);
  ExprPtr parse_condexpr();
  ExprPtr binary(Expr::K k, const Token& at, ExprPtr l, ExprPtr r, std::string op = "");
  ExprPtr parse_or();
  ExprPtr parse_and();
  ExprPtr parse_not();
  ExprPtr parse_compare();
  ExprPtr parse_math1();
  ExprPtr parse_concat();
  ExprPtr parse_math2();
  ExprPtr parse_pow();
  ExprPtr parse_unary(bool with_filter);
  ExprPtr literal(const Token& at, Value v);
  ExprPtr parse_primary();
  ExprPtr parse_postfix(ExprPtr e);
  ExprPtr parse_subscript(ExprPtr obj);
  void parse_call_args(Expr& e);
  ExprPtr parse_call(ExprPtr callee);
  ExprPtr parse_filter_expr(ExprPtr e);
};

}  // namespace safekey::text::jinja::detail
