// Operators, attribute/item access, tests and globals with Python semantics. Filters are in
// jinja_filters.cpp, the methods of str/dict/list in jinja_methods.cpp.
#include "safekey/text/jinja_builtins.h"

#include <cmath>
#include <ctime>

#include "safekey/text/jinja_pystr.h"

namespace safekey::text::jinja {

void undefined_error(const Value& v) {
  throw RuntimeError(v.s.empty() ? std::string("value is undefined") : v.s);
}

List iterate(const Value& v) {
  switch (v.kind) {
    case Value::Kind::Undefined: return {};
    case Value::Kind::List: return *v.list;
    case Value::Kind::Dict: {
      List keys;
      for (const auto& kv : v.dict->items) keys.push_back(Value::string(kv.first));
      return keys;
    }
    case Value::Kind::String: {
      List chars;
      std::string one;
      for (uint32_t cp : decode_utf8(v.s)) {
        one.clear();
        append_utf8(one, cp);
        chars.push_back(Value::string(one));
      }
      return chars;
    }
    default: throw RuntimeError(cat("'", v.type_name(), "' object is not iterable"));
  }
}

static int64_t floordiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

static Value repeat(const Value& seq, int64_t n) {
  size_t unit = seq.is_string() ? seq.s.size() : seq.list->size();
  if (n > 0 && unit > 0 && uint64_t(n) > (uint64_t(1) << 28) / unit) throw RuntimeError("repetition result too large");
  if (seq.is_string()) {
    std::string out;
    for (int64_t k = 0; k < n; ++k) out += seq.s;
    return Value::string(out);
  }
  List out;
  for (int64_t k = 0; k < n; ++k) out.insert(out.end(), seq.list->begin(), seq.list->end());
  return Value::make_list(std::move(out), seq.is_tuple);
}

// Python's printf-style `str % args` for %s %r %d %i %f %%.
static std::string percent_format(const std::string& fmt, const Value& args) {
  List items = args.is_list() && args.is_tuple ? *args.list : List{args};
  size_t next = 0;
  std::string out;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') {
      out += fmt[i];
      continue;
    }
    if (++i >= fmt.size()) throw RuntimeError("incomplete format");
    char c = fmt[i];
    if (c == '%') {
      out += '%';
      continue;
    }
    if (next >= items.size()) throw RuntimeError("not enough arguments for format string");
    const Value& a = items[next++];
    if (c == 's') out += py_str(a);
    else if (c == 'r') out += py_repr(a);
    else if ((c == 'd' || c == 'i') && a.is_number()) out += std::to_string(a.kind == Value::Kind::Float ? int64_t(a.f) : a.as_int());
    else if (c == 'f' && a.is_number()) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%f", a.as_double());
      out += buf;
    } else {
      throw RuntimeError(cat("unsupported format character '", std::string(1, c), "'"));
    }
  }
  if (next < items.size()) throw RuntimeError("not all arguments converted during string formatting");
  return out;
}

Value binary_op(const std::string& op, const Value& a, const Value& b) {
  if (op == "~") return Value::string(py_str(a) + py_str(b));
  if (a.is_undefined()) undefined_error(a);
  if (b.is_undefined()) undefined_error(b);
  bool nums = a.is_number() && b.is_number();
  bool floats = nums && (a.kind == Value::Kind::Float || b.kind == Value::Kind::Float);
  auto type_error = [&]() -> Value {
    throw RuntimeError(cat("unsupported operand type(s) for ", op, ": '", a.type_name(), "' and '", b.type_name(), "'"));
  };
  if (op == "+") {
    if (floats) return Value::number(a.as_double() + b.as_double());
    if (nums) return Value::integer(a.as_int() + b.as_int());
    if (a.is_string() && b.is_string()) return Value::string(a.s + b.s);
    if (a.is_list() && b.is_list() && a.is_tuple == b.is_tuple) {
      List out = *a.list;
      out.insert(out.end(), b.list->begin(), b.list->end());
      return Value::make_list(std::move(out), a.is_tuple);
    }
    if (a.is_string()) throw RuntimeError(cat("can only concatenate str (not \"", b.type_name(), "\") to str"));
    return type_error();
  }
  if (op == "-") {
    if (floats) return Value::number(a.as_double() - b.as_double());
    if (nums) return Value::integer(a.as_int() - b.as_int());
    return type_error();
  }
  if (op == "*") {
    if (floats) return Value::number(a.as_double() * b.as_double());
    if (nums) return Value::integer(a.as_int() * b.as_int());
    if ((a.is_string() || a.is_list()) && b.is_integer()) return repeat(a, b.as_int());
    if ((b.is_string() || b.is_list()) && a.is_integer()) return repeat(b, a.as_int());
    return type_error();
  }
  if (op == "/") {
    if (!nums) return type_error();
    if (b.as_double() == 0) throw RuntimeError("division by zero");
    return Value::number(a.as_double() / b.as_double());
  }
  if (op == "//" || op == "%") {
    if (op == "%" && a.is_string()) return Value::string(percent_format(a.s, b));
    if (!nums) return type_error();
    if (b.as_double() == 0) throw RuntimeError(op == "//" ? "integer division or modulo by zero" : "modulo by zero");
    if (floats) {
      double x = a.as_double(), y = b.as_double();
      double q = std::floor(x / y);
      return op == "//" ? Value::number(q) : Value::number(x - q * y);
    }
    int64_t q = floordiv(a.as_int(), b.as_int());
    return op == "//" ? Value::integer(q) : Value::integer(a.as_int() - q * b.as_int());
  }
  if (op == "**") {
    if (!nums) return type_error();
    if (!floats && b.as_int() >= 0) {
      int64_t base = a.as_int(), e = b.as_int();
      if (base == 0 || base == 1) return Value::integer(e == 0 ? 1 : base);
      if (base == -1) return Value::integer(e % 2 ? -1 : 1);
      if (e > 62) throw RuntimeError("integer result too large");
      int64_t r = 1;
      for (int64_t k = 0; k < e; ++k) {
        if (__builtin_mul_overflow(r, base, &r)) throw RuntimeError("integer result too large");
      }
      return Value::integer(r);
    }
    return Value::number(std::pow(a.as_double(), b.as_double()));
  }
  throw RuntimeError(cat("unsupported operator '", op, "'"));
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind) {
    case Value::Kind::Undefined: return false;
    case Value::Kind::String:
      if (!item.is_string())
        throw RuntimeError(cat("'in <string>' requires string as left operand, not ", item.type_name()));
      return container.s.find(item.s) != std::string::npos;
    case Value::Kind::List:
      for (const auto& e : *container.list)
        if (py_equal(e, item)) return true;
      return false;
    case Value::Kind::Dict: return item.is_string() && container.dict->find(item.s) != nullptr;
    default: throw RuntimeError(cat("argument of type '", container.type_name(), "' is not iterable"));
  }
}

static const char* object_name(const Value& v) {
  switch (v.kind) {
    case Value::Kind::Dict: return "dict object";
    case Value::Kind::List: return v.is_tuple ? "tuple object" : "list object";
    case Value::Kind::String: return "str object";
    case Value::Kind::Int: return "int object";
    case Value::Kind::Float: return "float object";
    case Value::Kind::Bool: return "bool object";
    case Value::Kind::None: return "None";
    default: return "object";
  }
}

Value get_attr(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) undefined_error(obj);
  if (has_method(obj, name)) {
    Value self = obj;
    return Value::function([self, name](const CallArgs& a) { return call_method(self, name, a); });
  }
  if (obj.is_dict() || obj.kind == Value::Kind::Namespace) {
    if (const Value* v = obj.dict->find(name)) return *v;
  }
  return Value::undefined(cat("'", object_name(obj), "' has no attribute '", name, "'"));
}

Value get_item(const Value& obj, const Value& key) {
  if (obj.is_undefined()) undefined_error(obj);
  if ((obj.is_dict() || obj.kind == Value::Kind::Namespace) && key.is_string()) {
    if (const Value* v = obj.dict->find(key.s)) return *v;
    return get_attr(obj, key.s);
  }
  if ((obj.is_list() || obj.is_string()) && key.is_integer()) {
    int64_t i = key.as_int();
    if (obj.is_list()) {
      int64_t n = int64_t(obj.list->size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return (*obj.list)[size_t(i)];
    } else {
      std::vector<uint32_t> cps = decode_utf8(obj.s);
      int64_t n = int64_t(cps.size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return Value::string(encode_utf8(cps, size_t(i), size_t(i) + 1));
    }
    return Value::undefined(cat("'", object_name(obj), "' has no element ", key.as_int()));
  }
  if (key.is_string()) return get_attr(obj, key.s);
  return Value::undefined(cat("'", object_name(obj), "' has no element ", py_repr(key)));
}

// ---- tests --------------------------------------------------------------------------------------
static const Value& arg0(const CallArgs& a, const char* test) {
  if (a.pos.empty()) throw RuntimeError(cat("test '", test, "' needs an argument"));
  return a.pos[0];
}

bool has_test(const std::string& n) {
  static const char* names[] = {"defined", "undefined", "none", "boolean", "false", "true", "integer", "float",
                                "number", "string", "mapping", "iterable", "sequence", "callable", "sameas",
                                "escaped", "in", "eq", "equalto", "==", "ne", "!=", "lt", "lessthan", "<", "le",
                                "<=", "gt", "greaterthan", ">", "ge", ">=", "odd", "even", "divisibleby", "lower",
                                "upper"};
  for (const char* x : names)
    if (n == x) return true;
  return false;
}

bool apply_test(const std::string& n, const Value& v, const CallArgs& a) {
  using K = Value::Kind;
  if (n == "defined") return !v.is_undefined();
  if (n == "undefined") return v.is_undefined();
  if (n == "none") return v.is_none();
  if (n == "boolean") return v.kind == K::Bool;
  if (n == "false") return v.kind == K::Bool && !v.b;
  if (n == "true") return v.kind == K::Bool && v.b;
  if (n == "integer") return v.kind == K::Int;
  if (n == "float") return v.kind == K::Float;
  if (n == "number") return v.is_number();
  if (n == "string") return v.is_string();
  if (n == "mapping") return v.is_dict();
  if (n == "iterable") return v.is_list() || v.is_dict() || v.is_string() || v.is_undefined();
  if (n == "sequence") return v.is_list() || v.is_dict() || v.is_string() || v.is_undefined();
  if (n == "callable") return v.kind == K::Function;
  if (n == "escaped") return false;
  if (n == "sameas") {
    const Value& o = arg0(a, "sameas");
    if (v.kind != o.kind) return false;
    if (v.is_none() || v.is_undefined()) return true;
    if (v.kind == K::Bool) return v.b == o.b;
    if (v.kind == K::Int) return v.i == o.i;  // small ints are interned in CPython
    if (v.is_list()) return v.list == o.list;
    return v.dict == o.dict && v.fn == o.fn && v.kind != K::String && v.kind != K::Float;
  }
  if (n == "in") return contains(arg0(a, "in"), v);
  if (n == "eq" || n == "equalto" || n == "==") return py_equal(v, arg0(a, "eq"));
  if (n == "ne" || n == "!=") return !py_equal(v, arg0(a, "ne"));
  if (n == "lt" || n == "lessthan" || n == "<") return py_less(v, arg0(a, "lt"));
  if (n == "le" || n == "<=") return !py_less(arg0(a, "le"), v);
  if (n == "gt" || n == "greaterthan" || n == ">") return py_less(arg0(a, "gt"), v);
  if (n == "ge" || n == ">=") return !py_less(v, arg0(a, "ge"));
  if (n == "odd" || n == "even" || n == "divisibleby") {
    if (!v.is_integer()) throw RuntimeError(cat("test '", n, "' needs an integer"));
    if (n == "odd") return v.as_int() % 2 != 0;
    if (n == "even") return v.as_int() % 2 == 0;
    const Value& d = arg0(a, "divisibleby");
    if (!d.is_integer() || d.as_int() == 0) throw RuntimeError("divisibleby needs a non-zero integer");
    return v.as_int() % d.as_int() == 0;
  }
  if (n == "lower") return v.is_string() && py_lower(v.s) == v.s;
  if (n == "upper") return v.is_string() && py_upper(v.s) == v.s;
  throw RuntimeError(cat("no test named '", n, "'"));
}

// ---- globals ------------------------------------------------------------------------------------
Dict make_globals() {
  Dict g;
  g.set("range", Value::function([](const CallArgs& a) -> Value {
    for (const auto& x : a.pos)
      if (!x.is_integer()) throw RuntimeError("range() arguments must be integers");
    int64_t start = 0, stop = 0, step = 1;
    if (a.pos.size() == 1) stop = a.pos[0].as_int();
    else if (a.pos.size() == 2 || a.pos.size() == 3) {
      start = a.pos[0].as_int();
      stop = a.pos[1].as_int();
      if (a.pos.size() == 3) step = a.pos[2].as_int();
    } else {
      throw RuntimeError("range expected 1 to 3 arguments");
    }
    if (step == 0) throw RuntimeError("range() arg 3 must not be zero");
    List out;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
      if (out.size() >= 100000) throw RuntimeError("range too big (more than 100000 items)");
      out.push_back(Value::integer(i));
    }
    return Value::make_list(std::move(out));
  }));
  auto kwdict = [](const CallArgs& a, const char* what) {
    Dict d;
    for (const auto& p : a.pos) {
      if (!p.is_dict()) throw RuntimeError(cat(what, "() positional arguments must be mappings"));
      for (const auto& kv : p.dict->items) d.set(kv.first, kv.second);
    }
    for (const auto& kv : a.kw) d.set(kv.first, kv.second);
    return d;
  };
  g.set("namespace", Value::function([kwdict](const CallArgs& a) { return Value::make_namespace(kwdict(a, "namespace")); }));
  g.set("dict", Value::function([kwdict](const CallArgs& a) { return Value::make_dict(kwdict(a, "dict")); }));
  g.set("raise_exception", Value::function([](const CallArgs& a) -> Value {
    throw RuntimeError(cat("template raised an exception: ", a.pos.empty() ? std::string() : py_str(a.pos[0])));
  }));
  g.set("strftime_now", Value::function([](const CallArgs& a) -> Value {
    if (a.pos.empty() || !a.pos[0].is_string()) throw RuntimeError("strftime_now() needs a format string");
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    char buf[512];
    size_t n = std::strftime(buf, sizeof buf, a.pos[0].s.c_str(), &tm);
    return Value::string(std::string(buf, n));
  }));
  return g;
}

}  // namespace safekey::text::jinja
