// Expressions of the template parser: tuples down to primaries, postfixes, filters and tests.
#include "safekey/text/jinja_parser_impl.h"

#include "safekey/util/error.h"

namespace safekey::text::jinja::detail {

ExprPtr Parser::parse_tuple(bool with_condexpr, bool explicit_parens) {
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

ExprPtr Parser::parse_expression(bool with_condexpr) { return with_condexpr ? parse_condexpr() : parse_or(); }

ExprPtr Parser::parse_condexpr() {
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

ExprPtr Parser::binary(Expr::K k, const Token& at, ExprPtr l, ExprPtr r, std::string op) {
  auto e = node(k, at);
  e->name = std::move(op);
  e->args.push_back(std::move(l));
  e->args.push_back(std::move(r));
  return e;
}

ExprPtr Parser::parse_or() {
  ExprPtr e = parse_and();
  while (is_name("or")) {
    const Token& at = next();
    e = binary(Expr::K::Or, at, std::move(e), parse_and());
  }
  return e;
}

ExprPtr Parser::parse_and() {
  ExprPtr e = parse_not();
  while (is_name("and")) {
    const Token& at = next();
    e = binary(Expr::K::And, at, std::move(e), parse_not());
  }
  return e;
}

ExprPtr Parser::parse_not() {
  if (is_name("not")) {
    const Token& at = next();
    auto e = node(Expr::K::Not, at);
    e->args.push_back(parse_not());
    return e;
  }
  return parse_compare();
}

ExprPtr Parser::parse_compare() {
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

ExprPtr Parser::parse_math1() {
  ExprPtr e = parse_concat();
  while (is_op("+") || is_op("-")) {
    const Token& at = next();
    e = binary(Expr::K::Binary, at, std::move(e), parse_concat(), at.text);
  }
  return e;
}

ExprPtr Parser::parse_concat() {
  ExprPtr e = parse_math2();
  while (is_op("~")) {
    const Token& at = next();
    e = binary(Expr::K::Binary, at, std::move(e), parse_math2(), "~");
  }
  return e;
}

ExprPtr Parser::parse_math2() {
  ExprPtr e = parse_pow();
  while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
    const Token& at = next();
    e = binary(Expr::K::Binary, at, std::move(e), parse_pow(), at.text);
  }
  return e;
}

ExprPtr Parser::parse_pow() {
  ExprPtr e = parse_unary(true);
  while (is_op("**")) {
    const Token& at = next();
    e = binary(Expr::K::Binary, at, std::move(e), parse_unary(true), "**");
  }
  return e;
}

ExprPtr Parser::parse_unary(bool with_filter) {
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

ExprPtr Parser::literal(const Token& at, Value v) {
  auto e = node(Expr::K::Literal, at);
  e->value = std::move(v);
  return e;
}

ExprPtr Parser::parse_primary() {
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

ExprPtr Parser::parse_postfix(ExprPtr e) {
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

ExprPtr Parser::parse_subscript(ExprPtr obj) {
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

void Parser::parse_call_args(Expr& e) {
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

ExprPtr Parser::parse_call(ExprPtr callee) {
  auto c = node(Expr::K::Call, cur());
  c->line = callee->line;  // errors of a call point at what is called
  c->col = callee->col;
  c->args.push_back(std::move(callee));
  parse_call_args(*c);
  return c;
}

ExprPtr Parser::parse_filter_expr(ExprPtr e) {
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

}  // namespace safekey::text::jinja::detail
