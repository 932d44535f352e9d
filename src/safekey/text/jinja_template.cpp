// The interpreter: statements write into one output string; expressions evaluate to Values.
// Scoping follows Jinja: a for-loop iteration and a macro call open a fresh scope (assignments in
// them do not leak out, and do not carry over to the next iteration); `if` opens none; namespaces
// carry state across scopes.
#include "safekey/text/jinja_template.h"

#include <unordered_map>
#include <unordered_set>

#include "safekey/text/jinja_builtins.h"
#include "safekey/text/jinja_lexer.h"
#include "safekey/text/jinja_parser.h"
#include "safekey/text/jinja_pystr.h"

namespace safekey::text::jinja {
namespace {

struct Frame {
  std::unordered_map<std::string, Value> vars;
  std::shared_ptr<Frame> parent;
  const Value* lookup(const std::string& n) const {
    for (const Frame* f = this; f; f = f->parent.get()) {
      auto it = f->vars.find(n);
      if (it != f->vars.end()) return &it->second;
    }
    return nullptr;
  }
};
using FramePtr = std::shared_ptr<Frame>;

enum class Flow { Normal, Break, Continue };

class Interp {
 public:
  explicit Interp(const std::string& name) : name_(name) {}

  [[noreturn]] void error_at(int line, int col, const std::string& msg) const {
    fail(name_, ":", line, ":", col, ": ", msg);
  }

  Flow exec(const Body& body, const FramePtr& f, std::string& out) {
    for (const auto& s : body) {
      Flow fl = exec_stmt(*s, f, out);
      if (fl != Flow::Normal) return fl;
    }
    return Flow::Normal;
  }

  Value eval(const Expr& e, const FramePtr& f) {
    try {
      return eval_inner(e, f);
    } catch (const RuntimeError& err) {
      error_at(e.line, e.col, err.what());
    }
  }

 private:
  static constexpr int64_t kMaxIterations = 10000000;
  std::string name_;
  int depth_ = 0;
  int64_t iterations_ = 0;

  Flow exec_stmt(const Stmt& s, const FramePtr& f, std::string& out) {
    switch (s.kind) {
      case Stmt::K::Data: out += s.text; return Flow::Normal;
      case Stmt::K::Output: out += py_str(eval(*s.expr, f)); return Flow::Normal;
      case Stmt::K::If:
        for (const auto& br : s.branches)
          if (!br.first || eval(*br.first, f).truthy()) return exec(br.second, f, out);
        return Flow::Normal;
      case Stmt::K::For: return exec_for(s, f, out);
      case Stmt::K::Set: assign(s, s.target, eval(*s.expr, f), f); return Flow::Normal;
      case Stmt::K::SetBlock: {
        std::string captured;
        exec(s.body, f, captured);
        assign(s, s.target, Value::string(captured), f);
        return Flow::Normal;
      }
      case Stmt::K::Macro: f->vars[s.name] = make_macro(s, f); return Flow::Normal;
      case Stmt::K::Break: return Flow::Break;
      case Stmt::K::Continue: return Flow::Continue;
      case Stmt::K::With: {
        auto inner = std::make_shared<Frame>();
        inner->parent = f;
        for (const auto& p : s.params) inner->vars[p.first] = eval(*p.second, f);
        return exec(s.body, inner, out);
      }
      case Stmt::K::Generation: return exec(s.body, f, out);
      default: error_at(s.line, s.col, "unsupported statement");
    }
  }

  void assign(const Stmt& s, const Target& t, Value v, const FramePtr& f) {
    if (!t.attr.empty()) {
      const Value* ns = f->lookup(t.names[0]);
      if (!ns || ns->kind != Value::Kind::Namespace)
        error_at(s.line, s.col, cat("cannot assign attribute on non-namespace object '", t.names[0], "'"));
      ns->dict->set(t.attr, std::move(v));
      return;
    }
    if (!t.tuple) {
      f->vars[t.names[0]] = std::move(v);
      return;
    }
    List items = v.is_list() ? *v.list : iterate(v);
    if (items.size() != t.names.size())
      error_at(s.line, s.col, cat("cannot unpack ", items.size(), " values into ", t.names.size(), " names"));
    for (size_t k = 0; k < items.size(); ++k) f->vars[t.names[k]] = items[k];
  }

  Flow exec_for(const Stmt& s, const FramePtr& f, std::string& out) {
    Value seq = eval(*s.expr, f);
    if (!(seq.is_list() || seq.is_dict() || seq.is_string() || seq.is_undefined()))
      error_at(s.expr->line, s.expr->col, cat("'", seq.type_name(), "' object is not iterable"));
    List items = iterate(seq);
    auto bind = [&](const FramePtr& fr, const Value& item) {
      if (!s.target.tuple) {
        fr->vars[s.target.names[0]] = item;
        return;
      }
      List parts = iterate(item);
      if (parts.size() != s.target.names.size())
        error_at(s.line, s.col, cat("cannot unpack ", parts.size(), " values into ", s.target.names.size(), " loop variables"));
      for (size_t k = 0; k < parts.size(); ++k) fr->vars[s.target.names[k]] = parts[k];
    };
    if (s.loop_filter) {
      List kept;
      for (const auto& item : items) {
        auto tmp = std::make_shared<Frame>();
        tmp->parent = f;
        bind(tmp, item);
        if (eval(*s.loop_filter, tmp).truthy()) kept.push_back(item);
      }
      items = std::move(kept);
    }
    if (items.empty()) {
      exec(s.else_body, f, out);
      return Flow::Normal;
    }
    int64_t n = int64_t(items.size());
    for (int64_t k = 0; k < n; ++k) {
      auto fr = std::make_shared<Frame>();
      fr->parent = f;
      Dict loop;
      loop.items.reserve(13);
      loop.items.emplace_back("index", Value::integer(k + 1));
      loop.items.emplace_back("index0", Value::integer(k));
      loop.items.emplace_back("revindex", Value::integer(n - k));
      loop.items.emplace_back("revindex0", Value::integer(n - k - 1));
      loop.items.emplace_back("first", Value::boolean(k == 0));
      loop.items.emplace_back("last", Value::boolean(k == n - 1));
      loop.items.emplace_back("length", Value::integer(n));
      loop.items.emplace_back("depth", Value::integer(1));
      loop.items.emplace_back("depth0", Value::integer(0));
      loop.items.emplace_back("previtem", k > 0 ? items[size_t(k - 1)] : Value::undefined("'loop.previtem' is undefined"));
      loop.items.emplace_back("nextitem", k + 1 < n ? items[size_t(k + 1)] : Value::undefined("'loop.nextitem' is undefined"));
      loop.items.emplace_back("cycle", Value::function([k](const CallArgs& a) -> Value {
        if (a.pos.empty()) throw RuntimeError("no items for cycling given");
        return a.pos[size_t(k) % a.pos.size()];
      }));
      if (++iterations_ > kMaxIterations) error_at(s.line, s.col, "template runs too long (more than 10^7 loop iterations)");
      fr->vars["loop"] = Value::make_dict(std::move(loop));
      bind(fr, items[size_t(k)]);
      if (exec(s.body, fr, out) == Flow::Break) break;
    }
    return Flow::Normal;
  }

  Value make_macro(const Stmt& s, const FramePtr& def_frame) {
    const Stmt* sp = &s;
    std::weak_ptr<Frame> weak = def_frame;  // the defining scope outlives every call in a render
    return Value::function([this, sp, weak](const CallArgs& a) -> Value {
      if (a.pos.size() > sp->params.size()) throw RuntimeError(cat("macro '", sp->name, "' takes not more than ", sp->params.size(), " argument(s)"));
      auto fr = std::make_shared<Frame>();
      fr->parent = weak.lock();
      for (size_t k = 0; k < sp->params.size(); ++k) {
        const auto& p = sp->params[k];
        Value v = Value::undefined(cat("'", p.first, "' is undefined"));
        if (k < a.pos.size()) {
          v = a.pos[k];
        } else {
          bool found = false;
          for (const auto& kw : a.kw)
            if (kw.first == p.first) {
              v = kw.second;
              found = true;
            }
          if (!found && p.second) v = eval(*p.second, fr);
        }
        fr->vars[p.first] = v;
      }
      for (const auto& kw : a.kw) {
        bool known = false;
        for (const auto& p : sp->params) known |= p.first == kw.first;
        if (!known) throw RuntimeError(cat("macro '", sp->name, "' takes no keyword argument '", kw.first, "'"));
      }
      if (++depth_ > 200) throw RuntimeError("maximum macro recursion depth exceeded");
      std::string out;
      exec(sp->body, fr, out);
      --depth_;
      return Value::string(out);
    });
  }

  CallArgs eval_args(const Expr& e, size_t first, const FramePtr& f) {
    CallArgs a;
    for (size_t k = first; k < e.args.size(); ++k) a.pos.push_back(eval(*e.args[k], f));
    for (const auto& kw : e.kwargs) a.kw.emplace_back(kw.first, eval(*kw.second, f));
    return a;
  }

  Value eval_inner(const Expr& e, const FramePtr& f) {
    switch (e.kind) {
      case Expr::K::Literal: return e.value;
      case Expr::K::Name: {
        const Value* v = f->lookup(e.name);
        return v ? *v : Value::undefined(cat("'", e.name, "' is undefined"));
      }
      case Expr::K::List:
      case Expr::K::Tuple: {
        List l;
        for (const auto& a : e.args) l.push_back(eval(*a, f));
        return Value::make_list(std::move(l), e.kind == Expr::K::Tuple);
      }
      case Expr::K::DictLit: {
        Dict d;
        for (const auto& p : e.pairs) {
          Value k = eval(*p.first, f);
          if (!k.is_string()) throw RuntimeError("only string keys are supported in dict literals");
          d.set(k.s, eval(*p.second, f));
        }
        return Value::make_dict(std::move(d));
      }
      case Expr::K::Getattr: return get_attr(eval(*e.args[0], f), e.name);
      case Expr::K::Getitem: return get_item(eval(*e.args[0], f), eval(*e.args[1], f));
      case Expr::K::Slice: return eval_slice(e, f);
      case Expr::K::Call: {
        const Expr& callee = *e.args[0];
        if (callee.kind == Expr::K::Getattr) {
          Value obj = eval(*callee.args[0], f);
          if (has_method(obj, callee.name)) return call_method(obj, callee.name, eval_args(e, 1, f));
          Value fn = get_attr(obj, callee.name);
          return call_value(fn, eval_args(e, 1, f));
        }
        Value fn = eval(callee, f);
        return call_value(fn, eval_args(e, 1, f));
      }
      case Expr::K::Filter: {
        Value v = eval(*e.args[0], f);
        return apply_filter(e.name, v, eval_args(e, 1, f));
      }
      case Expr::K::Test: {
        Value v = eval(*e.args[0], f);
        bool r = apply_test(e.name, v, eval_args(e, 1, f));
        return Value::boolean(e.negated ? !r : r);
      }
      case Expr::K::Not: return Value::boolean(!eval(*e.args[0], f).truthy());
      case Expr::K::Neg:
      case Expr::K::Pos: {
        Value v = eval(*e.args[0], f);
        if (v.is_undefined()) undefined_error(v);
        if (!v.is_number()) throw RuntimeError(cat("bad operand type for unary ", e.kind == Expr::K::Neg ? "-" : "+", ": '", v.type_name(), "'"));
        if (e.kind == Expr::K::Pos) return v.kind == Value::Kind::Bool ? Value::integer(v.as_int()) : v;
        return v.kind == Value::Kind::Float ? Value::number(-v.f) : Value::integer(-v.as_int());
      }
      case Expr::K::Binary: return binary_op(e.name, eval(*e.args[0], f), eval(*e.args[1], f));
      case Expr::K::Compare: {
        Value left = eval(*e.args[0], f);
        for (size_t k = 0; k < e.ops.size(); ++k) {
          Value right = eval(*e.args[k + 1], f);
          const std::string& op = e.ops[k];
          bool r;
          if (op == "==") r = py_equal(left, right);
          else if (op == "!=") r = !py_equal(left, right);
          else if (op == "in") r = contains(right, left);
          else if (op == "notin") r = !contains(right, left);
          else {
            if (left.is_undefined()) undefined_error(left);
            if (right.is_undefined()) undefined_error(right);
            try {
              if (op == "<") r = py_less(left, right);
              else if (op == ">") r = py_less(right, left);
              else if (op == "<=") r = !py_less(right, left);
              else r = !py_less(left, right);
            } catch (const Error& err) {
              throw RuntimeError(cat(err.what()));
            }
          }
          if (!r) return Value::boolean(false);
          left = std::move(right);
        }
        return Value::boolean(true);
      }
      case Expr::K::And: {
        Value l = eval(*e.args[0], f);
        return l.truthy() ? eval(*e.args[1], f) : l;
      }
      case Expr::K::Or: {
        Value l = eval(*e.args[0], f);
        return l.truthy() ? l : eval(*e.args[1], f);
      }
      case Expr::K::Cond:
        if (eval(*e.args[1], f).truthy()) return eval(*e.args[0], f);
        return e.args[2] ? eval(*e.args[2], f) : Value::undefined("the inline if-expression evaluated to false and no else section was defined");
    }
    throw RuntimeError("unsupported expression");
  }

  Value call_value(const Value& fn, const CallArgs& args) {
    if (fn.is_undefined()) undefined_error(fn);
    if (fn.kind != Value::Kind::Function) throw RuntimeError(cat("'", fn.type_name(), "' object is not callable"));
    return (*fn.fn)(args);
  }

  Value eval_slice(const Expr& e, const FramePtr& f) {
    Value obj = eval(*e.args[0], f);
    std::optional<int64_t> idx[3];
    for (int k = 0; k < 3; ++k) {
      if (!e.args[size_t(k + 1)]) continue;
      Value v = eval(*e.args[size_t(k + 1)], f);
      if (v.is_none()) continue;
      if (!v.is_integer()) throw RuntimeError("slice indices must be integers or None");
      idx[k] = v.as_int();
    }
    if (idx[2] && *idx[2] == 0) throw RuntimeError("slice step cannot be zero");
    if (obj.is_undefined()) undefined_error(obj);
    if (obj.is_list()) {
      List out;
      for (int64_t i : py_slice_indices(int64_t(obj.list->size()), idx[0], idx[1], idx[2])) out.push_back((*obj.list)[size_t(i)]);
      return Value::make_list(std::move(out), obj.is_tuple);
    }
    if (obj.is_string()) {
      std::vector<uint32_t> cps = decode_utf8(obj.s);
      std::string out;
      for (int64_t i : py_slice_indices(int64_t(cps.size()), idx[0], idx[1], idx[2])) append_utf8(out, cps[size_t(i)]);
      return Value::string(out);
    }
    throw RuntimeError(cat("'", obj.type_name(), "' object is not subscriptable"));
  }
};

void check_names(const Body& body, const std::string& name);

void check_expr(const Expr* e, const std::string& name) {
  if (!e) return;
  if (e->kind == Expr::K::Filter && !has_filter(e->name))
    fail(name, ":", e->line, ":", e->col, ": no filter named '", e->name, "'");
  if (e->kind == Expr::K::Test && !has_test(e->name))
    fail(name, ":", e->line, ":", e->col, ": no test named '", e->name, "'");
  for (const auto& a : e->args) check_expr(a.get(), name);
  for (const auto& kw : e->kwargs) check_expr(kw.second.get(), name);
  for (const auto& p : e->pairs) {
    check_expr(p.first.get(), name);
    check_expr(p.second.get(), name);
  }
}

void check_names(const Body& body, const std::string& name) {
  for (const auto& s : body) {
    check_expr(s->expr.get(), name);
    check_expr(s->loop_filter.get(), name);
    for (const auto& br : s->branches) {
      check_expr(br.first.get(), name);
      check_names(br.second, name);
    }
    for (const auto& p : s->params) check_expr(p.second.get(), name);
    check_names(s->body, name);
    check_names(s->else_body, name);
  }
}

bool is_string_literal(const Expr* e, const char* s) {
  return e && e->kind == Expr::K::Literal && e->value.is_string() && e->value.s == s;
}

// `X.split('</think>')[-1]` where X is the name `var`.
bool is_split_last(const Expr* e, const std::string& var) {
  if (!e || e->kind != Expr::K::Getitem) return false;
  const Expr* idx = e->args[1].get();
  bool minus_one = (idx->kind == Expr::K::Literal && idx->value.kind == Value::Kind::Int && idx->value.i == -1) ||
                   (idx->kind == Expr::K::Neg && idx->args[0]->kind == Expr::K::Literal &&
                    idx->args[0]->value.kind == Value::Kind::Int && idx->args[0]->value.i == 1);
  const Expr* call = e->args[0].get();
  if (!minus_one || call->kind != Expr::K::Call || call->args.size() != 2) return false;
  const Expr* callee = call->args[0].get();
  return callee->kind == Expr::K::Getattr && callee->name == "split" && callee->args[0]->kind == Expr::K::Name &&
         callee->args[0]->name == var && is_string_literal(call->args[1].get(), "</think>");
}

int disable_clauses(Body& body) {
  int n = 0;
  for (auto& s : body) {
    if (s->kind == Stmt::K::If && s->branches.size() == 1) {
      Expr* test = s->branches[0].first.get();
      const Body& inner = s->branches[0].second;
      bool match = test && test->kind == Expr::K::Compare && test->ops.size() == 1 && test->ops[0] == "in" &&
                   is_string_literal(test->args[0].get(), "</think>") && test->args[1]->kind == Expr::K::Name;
      if (match) {
        const std::string& var = test->args[1]->name;
        int sets = 0;
        for (const auto& st : inner) {
          if (st->kind == Stmt::K::Data) continue;
          bool ok = st->kind == Stmt::K::Set && !st->target.tuple && st->target.attr.empty() &&
                    st->target.names[0] == var && is_split_last(st->expr.get(), var);
          if (!ok) {
            match = false;
            break;
          }
          ++sets;
        }
        match = match && sets == 1;
      }
      if (match) {
        auto lit = std::make_unique<Expr>();
        lit->kind = Expr::K::Literal;
        lit->line = test->line;
        lit->col = test->col;
        lit->value = Value::boolean(false);
        s->branches[0].first = std::move(lit);
        ++n;
        continue;
      }
    }
    for (auto& br : s->branches) n += disable_clauses(br.second);
    n += disable_clauses(s->body);
    n += disable_clauses(s->else_body);
  }
  return n;
}

}  // namespace

Template::Template(const std::string& source, std::string name) : name_(std::move(name)) {
  body_ = std::make_shared<Body>(parse_template(lex_template(source, name_), name_));
  check_names(*body_, name_);
}

std::string Template::render(const Value& context) const {
  auto globals = std::make_shared<Frame>();
  for (auto& kv : make_globals().items) globals->vars[kv.first] = kv.second;
  auto root = std::make_shared<Frame>();
  root->parent = globals;
  if (context.is_dict())
    for (const auto& kv : context.dict->items) root->vars[kv.first] = kv.second;
  Interp in(name_);
  std::string out;
  Flow fl = in.exec(*body_, root, out);
  SK_CHECK(fl == Flow::Normal, name_, ": 'break' or 'continue' outside a loop");
  return out;
}

int Template::disable_think_stripping() { return disable_clauses(*body_); }

}  // namespace safekey::text::jinja
