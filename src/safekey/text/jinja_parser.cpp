#include "safekey/text/jinja_parser.h"

#include <algorithm>

#include "safekey/util/error.h"

namespace safekey::text::jinja {
namespace {

class Parser {
 public:
  Parser(const std::vector<Token>& toks, const std::string& name) : t_(toks), name_(name) {}

  Body parse_all() {
    Body body = subparse({});
    if (cur().type != Tok::Eof) error(cur(), cat("unexpected '", describe(cur()), "'"));
    return body;
  }

 private:
  const std::vector<Token>& t_;
  std::string name_;
  size_t p_ = 0;
  int depth_ = 0;  // expression and statement nesting (guards the stack)

  const Token& cur() const { return t_[p_]; }
  const Token& peek(size_t k = 1) const { return t_[std::min(p_ + k, t_.size() - 1)]; }
  const Token& next() { return t_[p_ < t_.size() - 1 ? p_++ : p_]; }

  static std::string describe(const Token& t) {
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

  [[noreturn]] void error(const Token& t, const std::string& msg) const {
    fail(name_, ":", t.line, ":", t.col, ": ", msg);
  }

  bool is_op(const char* op) const { return cur().type == Tok::Op && cur().text == op; }
  bool is_name(const char* n) const { return cur().type == Tok::Name && cur().text == n; }
  void expect_op(const char* op) {
    if (!is_op(op)) error(cur(), cat("expected '", op, "', got '", describe(cur()), "'"));
    next();
  }
  void expect_name(const char* n) {
    if (!is_name(n)) error(cur(), cat("expected '", n, "', got '", describe(cur()), "'"));
    next();
  }
  std::string expect_identifier() {
    if (cur().type != Tok::Name) error(cur(), cat("expected a name, got '", describe(cur()), "'"));
    return next().text;
  }
  void expect_block_end() {
    if (cur().type != Tok::BlockEnd) error(cur(), cat("expected '%}', got '", describe(cur()), "'"));
    next();
  }

  ExprPtr node(Expr::K k, const Token& at) {
    auto e = std::make_unique<Expr>();
    e->kind = k;
    e->line = at.line;
    e->col = at.col;
    return e;
  }

  // ---- statements --------------------------------------------------------------------------
  // Parses until a block tag whose name is in `ends` (left unconsumed: p_ points at its name).
  Body subparse(const std::vector<std::string>& ends) {
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

  StmtPtr stmt(Stmt::K k, const Token& at) {
    auto s = std::make_unique<Stmt>();
    s->kind = k;
    s->line = at.line;
    s->col = at.col;
    return s;
  }

  StmtPtr parse_statement() {
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

  StmtPtr parse_if() {
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

  Target parse_target(bool allow_attr) {
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

  StmtPtr parse_for() {
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

  StmtPtr parse_set() {
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

  StmtPtr parse_macro() {
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

  StmtPtr parse_with() {
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

  // ---- expressions -------------------------------------------------------------------------
  ExprPtr parse_tuple(bool with_condexpr, bool explicit_parens = false) {
    const Token& at = cur();
    std::vector<ExprPtr> items;
    bool saw_comma = false;
    while (true) {
      if (!items.empty()) {
        if (!is_op(",")) break;
        next();
        saw_comma = true;
      }
      if (cur().type == Tok::VarEnd || cur().type == Tok::BlockEnd || is_op(")") || is_name("in") ||
          is_name("if") || is_name("recursive"))
        break;
      items.push_back(parse_expression(with_condexpr));
    }
    if (!saw_comma && items.size() == 1) return std::move(items[0]);
    if (items.empty() && !explicit_parens) error(cur(), cat("expected an expression, got '", describe(cur()), "'"));
    auto e = node(Expr::K::Tuple, at);
    e->args = std::move(items);
    return e;
  }

  ExprPtr parse_expression(bool with_condexpr) { return with_condexpr ? parse_condexpr() : parse_or(); }

  ExprPtr parse_condexpr() {
    ExprPtr e = parse_or();
    while (is_name("if")) {
      const Token& at = next();
      auto c = node(Expr::K::Cond, at);
      c->args.push_back(std::move(e));
      c->args.push_back(parse_or());
      if (is_name("else")) {
        next();
        c->args.push_back(parse_condexpr());
      } else {
        c->args.push_back(nullptr);
      }
      e = std::move(c);
    }
    return e;
  }

  ExprPtr binary(Expr::K k, const Token& at, ExprPtr l, ExprPtr r, std::string op = "") {
    auto e = node(k, at);
    e->name = std::move(op);
    e->args.push_back(std::move(l));
    e->args.push_back(std::move(r));
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr e = parse_and();
    while (is_name("or")) {
      const Token& at = next();
      e = binary(Expr::K::Or, at, std::move(e), parse_and());
    }
    return e;
  }
  ExprPtr parse_and() {
    ExprPtr e = parse_not();
    while (is_name("and")) {
      const Token& at = next();
      e = binary(Expr::K::And, at, std::move(e), parse_not());
    }
    return e;
  }
  ExprPtr parse_not() {
    if (is_name("not")) {
      const Token& at = next();
      auto e = node(Expr::K::Not, at);
      e->args.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }
  ExprPtr parse_compare() {
    const Token& at = cur();
    ExprPtr first = parse_math1();
    std::unique_ptr<Expr> cmp;
    while (true) {
      std::string op;
      if (cur().type == Tok::Op && (cur().text == "==" || cur().text == "!=" || cur().text == "<" ||
                                    cur().text == "<=" || cur().text == ">" || cur().text == ">=")) {
        op = next().text;
      } else if (is_name("in")) {
        next();
        op = "in";
      } else if (is_name("not") && peek().type == Tok::Name && peek().text == "in") {
        next();
        next();
        op = "notin";
      } else {
        break;
      }
      if (!cmp) {
        cmp = node(Expr::K::Compare, at);
        cmp->args.push_back(std::move(first));
      }
      cmp->ops.push_back(op);
      cmp->args.push_back(parse_math1());
    }
    return cmp ? std::move(cmp) : std::move(first);
  }
  ExprPtr parse_math1() {
    ExprPtr e = parse_concat();
    while (is_op("+") || is_op("-")) {
      const Token& at = next();
      e = binary(Expr::K::Binary, at, std::move(e), parse_concat(), at.text);
    }
    return e;
  }
  ExprPtr parse_concat() {
    ExprPtr e = parse_math2();
    while (is_op("~")) {
      const Token& at = next();
      e = binary(Expr::K::Binary, at, std::move(e), parse_math2(), "~");
    }
    return e;
  }
  ExprPtr parse_math2() {
    ExprPtr e = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Token& at = next();
      e = binary(Expr::K::Binary, at, std::move(e), parse_pow(), at.text);
    }
    return e;
  }
  ExprPtr parse_pow() {
    ExprPtr e = parse_unary(true);
    while (is_op("**")) {
      const Token& at = next();
      e = binary(Expr::K::Binary, at, std::move(e), parse_unary(true), "**");
    }
    return e;
  }
  ExprPtr parse_unary(bool with_filter) {
    struct Depth {
      int& d;
      explicit Depth(int& x) : d(x) { ++d; }
      ~Depth() { --d; }
    } guard(depth_);
    if (depth_ > 300) error(cur(), "expression nested too deeply");
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      const Token& at = next();
      e = node(at.text == "-" ? Expr::K::Neg : Expr::K::Pos, at);
      e->args.push_back(parse_unary(false));
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    if (with_filter) e = parse_filter_expr(std::move(e));
    return e;
  }

  ExprPtr literal(const Token& at, Value v) {
    auto e = node(Expr::K::Literal, at);
    e->value = std::move(v);
    return e;
  }

  ExprPtr parse_primary() {
    const Token& t = cur();
    switch (t.type) {
      case Tok::Name: {
        next();
        if (t.text == "true" || t.text == "True") return literal(t, Value::boolean(true));
        if (t.text == "false" || t.text == "False") return literal(t, Value::boolean(false));
        if (t.text == "none" || t.text == "None") return literal(t, Value::none());
        auto e = node(Expr::K::Name, t);
        e->name = t.text;
        return e;
      }
      case Tok::String: {
        std::string s;
        while (cur().type == Tok::String) s += next().text;
        return literal(t, Value::string(s));
      }
      case Tok::Int: next(); return literal(t, Value::integer(t.ival));
      case Tok::Float: next(); return literal(t, Value::number(t.fval));
      case Tok::Op:
        if (t.text == "(") {
          next();
          ExprPtr e = parse_tuple(true, true);
          expect_op(")");
          return e;
        }
        if (t.text == "[") {
          next();
          auto e = node(Expr::K::List, t);
          while (!is_op("]")) {
            if (!e->args.empty()) expect_op(",");
            if (is_op("]")) break;
            e->args.push_back(parse_expression(true));
          }
          next();
          return e;
        }
        if (t.text == "{") {
          next();
          auto e = node(Expr::K::DictLit, t);
          while (!is_op("}")) {
            if (!e->pairs.empty()) expect_op(",");
            if (is_op("}")) break;
            ExprPtr k = parse_expression(true);
            expect_op(":");
            e->pairs.emplace_back(std::move(k), parse_expression(true));
          }
          next();
          return e;
        }
        break;
      default: break;
    }
    error(t, cat("unexpected '", describe(t), "'"));
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      if (is_op(".")) {
        const Token& at = next();
        if (cur().type == Tok::Name) {
          auto g = node(Expr::K::Getattr, at);
          g->name = next().text;
          g->args.push_back(std::move(e));
          e = std::move(g);
        } else if (cur().type == Tok::Int) {
          auto g = node(Expr::K::Getitem, at);
          g->args.push_back(std::move(e));
          g->args.push_back(literal(cur(), Value::integer(cur().ival)));
          next();
          e = std::move(g);
        } else {
          error(cur(), "expected an attribute name after '.'");
        }
      } else if (is_op("[")) {
        e = parse_subscript(std::move(e));
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr obj) {
    const Token& at = next();  // '['
    std::vector<ExprPtr> parts;  // start, stop, step
    bool is_slice = false;
    ExprPtr cur_part;
    auto at_end = [&] { return is_op(":") || is_op("]"); };
    if (!at_end()) cur_part = parse_expression(true);
    while (is_op(":")) {
      next();
      is_slice = true;
      parts.push_back(std::move(cur_part));
      cur_part = at_end() ? nullptr : parse_expression(true);
    }
    parts.push_back(std::move(cur_part));
    expect_op("]");
    if (!is_slice) {
      if (!parts[0]) error(at, "empty subscript");
      auto g = node(Expr::K::Getitem, at);
      g->args.push_back(std::move(obj));
      g->args.push_back(std::move(parts[0]));
      return g;
    }
    if (parts.size() > 3) error(at, "invalid slice");
    auto s = node(Expr::K::Slice, at);
    s->args.push_back(std::move(obj));
    for (size_t k = 0; k < 3; ++k) s->args.push_back(k < parts.size() ? std::move(parts[k]) : nullptr);
    return s;
  }

  void parse_call_args(Expr& e) {
    expect_op("(");
    size_t before = e.args.size();
    while (!is_op(")")) {
      if (e.args.size() > before || !e.kwargs.empty()) {
        expect_op(",");
        if (is_op(")")) break;
      }
      if (is_op("*") || is_op("**")) error(cur(), "*args / **kwargs in calls are not supported");
      if (cur().type == Tok::Name && peek().type == Tok::Op && peek().text == "=") {
        std::string k = next().text;
        next();
        e.kwargs.emplace_back(k, parse_expression(true));
      } else {
        if (!e.kwargs.empty()) error(cur(), "positional argument after a keyword argument");
        e.args.push_back(parse_expression(true));
      }
    }
    next();
  }

  ExprPtr parse_call(ExprPtr callee) {
    auto c = node(Expr::K::Call, cur());
    c->line = callee->line;  // errors of a call point at what is called
    c->col = callee->col;
    c->args.push_back(std::move(callee));
    parse_call_args(*c);
    return c;
  }

  ExprPtr parse_filter_expr(ExprPtr e) {
    while (true) {
      if (is_op("|")) {
        const Token& at = next();
        auto f = node(Expr::K::Filter, at);
        f->name = expect_identifier();
        while (is_op(".")) {
          next();
          f->name += "." + expect_identifier();
        }
        f->args.push_back(std::move(e));
        if (is_op("(")) parse_call_args(*f);
        e = std::move(f);
      } else if (is_name("is")) {
        const Token& at = next();
        auto t = node(Expr::K::Test, at);
        if (is_name("not")) {
          next();
          t->negated = true;
        }
        t->name = expect_identifier();
        t->args.push_back(std::move(e));
        if (is_op("(")) {
          parse_call_args(*t);
        } else if ((cur().type == Tok::Name || cur().type == Tok::String || cur().type == Tok::Int ||
                    cur().type == Tok::Float || is_op("[") || is_op("{")) &&
                   !is_name("else") && !is_name("or") && !is_name("and")) {
          if (is_name("is")) error(cur(), "you cannot chain multiple tests with 'is'");
          ExprPtr arg = parse_postfix(parse_primary());
          t->args.push_back(std::move(arg));
        }
        e = std::move(t);
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }
};

}  // namespace

Body parse_template(const std::vector<Token>& tokens, const std::string& name) {
  return Parser(tokens, name).parse_all();
}

}  // namespace safekey::text::jinja
