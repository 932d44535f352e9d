// Filters (Jinja's built-in filters plus transformers' json.dumps-based `tojson`), with Python's
// behaviour. The methods of str, dict and list are in jinja_methods.cpp.
#include <utf8proc.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "safekey/text/jinja_builtins.h"
#include "safekey/text/jinja_call_args.h"
#include "safekey/text/jinja_pystr.h"

namespace safekey::text::jinja {
namespace {

// Attribute path "a.b" or index "0" as Jinja's make_attrgetter.
Value attr_path(const Value& v, const std::string& path) {
  Value cur = v;
  size_t pos = 0;
  while (true) {
    size_t dot = path.find('.', pos);
    std::string part = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    bool digits = !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit);
    cur = digits ? get_item(cur, Value::integer(std::atoll(part.c_str()))) : get_item(cur, Value::string(part));
    if (dot == std::string::npos) return cur;
    pos = dot + 1;
  }
}

bool less_for_sort(const Value& a, const Value& b, bool case_sensitive) {
  if (a.is_string() && b.is_string() && !case_sensitive) return py_lower(a.s) < py_lower(b.s);
  try {
    return py_less(a, b);
  } catch (const Error& e) {
    throw RuntimeError(e.what());
  }
}

// select/reject/selectattr/rejectattr.
Value select_items(const Value& v, const CallArgs& a, bool by_attr, bool keep_if) {
  size_t first = 0;
  std::string attr;
  if (by_attr) {
    attr = need_str(a, 0, "attribute");
    first = 1;
  }
  std::optional<std::string> test = first < a.pos.size() ? std::optional<std::string>(need_str(a, first, "test")) : std::nullopt;
  CallArgs targs;
  for (size_t k = first + 1; k < a.pos.size(); ++k) targs.pos.push_back(a.pos[k]);
  if (test && !has_test(*test)) throw RuntimeError(cat("no test named '", *test, "'"));
  List out;
  for (const auto& item : iterate(v)) {
    Value x = by_attr ? attr_path(item, attr) : item;
    bool r = test ? apply_test(*test, x, targs) : x.truthy();
    if (r == keep_if) out.push_back(item);
  }
  return list_of(std::move(out));
}

double py_round(double x, int64_t digits) {
  if (digits == 0) return std::nearbyint(x);
  char buf[512];
  std::snprintf(buf, sizeof buf, "%.*f", int(std::clamp<int64_t>(digits, 0, 300)), x);
  return std::strtod(buf, nullptr);
}

std::string jinja_title(const std::string& s) {
  // Words begin after runs of [-\s({\[<]; each word gets word[0].upper() + word[1:].lower().
  std::vector<uint32_t> cps = decode_utf8(s);
  std::string out;
  bool at_start = true;
  for (uint32_t cp : cps) {
    bool sep = cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<' || py_isspace(cp);
    if (sep) {
      append_utf8(out, cp);
      at_start = true;
    } else {
      append_utf8(out, uint32_t(at_start ? utf8proc_toupper(utf8proc_int32_t(cp)) : utf8proc_tolower(utf8proc_int32_t(cp))));
      at_start = false;
    }
  }
  return out;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

const char* const kFilters[] = {"abs", "attr", "capitalize", "count", "d", "default", "dictsort", "e", "escape",
                                "first", "float", "forceescape", "format", "indent", "int", "items", "join", "last",
                                "length", "list", "lower", "map", "max", "min", "reject", "rejectattr", "replace",
                                "reverse", "round", "safe", "select", "selectattr", "sort", "string", "sum", "title",
                                "tojson", "trim", "unique", "upper", "wordcount", "center"};

}  // namespace

bool has_filter(const std::string& n) {
  for (const char* f : kFilters)
    if (n == f) return true;
  return false;
}

Value apply_filter(const std::string& n, const Value& v, const CallArgs& a) {
  using K = Value::Kind;
  if (n == "default" || n == "d") {
    bool boolean = arg_bool(a, 1, "boolean", false);
    if (v.is_undefined() || (boolean && !v.truthy())) {
      const Value* d = arg(a, 0, "default_value");
      return d ? *d : Value::string("");
    }
    return v;
  }
  if (n == "length" || n == "count") {
    switch (v.kind) {
      case K::Undefined: return Value::integer(0);
      case K::String: return Value::integer(int64_t(count_code_points(v.s)));
      case K::List: return Value::integer(int64_t(v.list->size()));
      case K::Dict: return Value::integer(int64_t(v.dict->items.size()));
      default: throw RuntimeError(cat("object of type '", v.type_name(), "' has no len()"));
    }
  }
  if (n == "tojson") {
    const Value* ind = arg(a, 1, "indent");
    int indent = ind && !ind->is_none() ? int(ind->as_int()) : -1;
    std::string item_sep, key_sep;
    if (const Value* sep = arg(a, 2, "separators"); sep && sep->is_list() && sep->list->size() == 2) {
      item_sep = py_str((*sep->list)[0]);
      key_sep = py_str((*sep->list)[1]);
    }
    try {
      return Value::string(py_json_dumps(v, indent, item_sep, key_sep, arg_bool(a, 3, "sort_keys", false)));
    } catch (const Error& e) {
      throw RuntimeError(e.what());
    }
  }
  if (n == "safe" || n == "string") return v.is_string() ? v : Value::string(py_str(v));
  if (n == "trim") return Value::string(py_strip(py_str(v), arg_str(a, 0, "chars"), true, true));
  if (n == "upper") return Value::string(py_upper(py_str(v)));
  if (n == "lower") return Value::string(py_lower(py_str(v)));
  if (n == "capitalize") return Value::string(py_capitalize(py_str(v)));
  if (n == "title") return Value::string(jinja_title(py_str(v)));
  if (n == "e" || n == "escape" || n == "forceescape") return Value::string(html_escape(py_str(v)));
  if (n == "replace") {
    int64_t count = arg_int(a, 2, "count", -1);
    return Value::string(py_replace(py_str(v), need_str(a, 0, "old"), need_str(a, 1, "new"), count));
  }
  if (n == "format") {
    CallArgs rest = a;
    return binary_op("%", Value::string(py_str(v)), Value::make_list(rest.pos, true));
  }
  if (n == "center") {
    int64_t width = arg_int(a, 0, "width", 80);
    std::string s = py_str(v);
    int64_t len = int64_t(count_code_points(s));
    if (len >= width) return Value::string(s);
    int64_t pad = width - len, left = pad / 2 + (pad & width & 1);
    return Value::string(std::string(size_t(left), ' ') + s + std::string(size_t(pad - left), ' '));
  }
  if (n == "wordcount") return Value::integer(int64_t(py_split(py_str(v), std::nullopt, -1).size()));
  if (n == "indent") {
    const Value* w = arg(a, 0, "width");
    std::string ind = !w ? "    " : w->is_string() ? w->s : std::string(size_t(std::max<int64_t>(0, w->as_int())), ' ');
    bool first = arg_bool(a, 1, "first", false), blank = arg_bool(a, 2, "blank", false);
    std::string s = py_str(v) + "\n";
    std::vector<std::string> lines = py_splitlines(s);
    std::string rv;
    if (blank) {
      for (size_t k = 0; k < lines.size(); ++k) rv += (k ? "\n" + ind : "") + lines[k];
    } else {
      rv = lines.empty() ? "" : lines[0];
      for (size_t k = 1; k < lines.size(); ++k) rv += "\n" + (lines[k].empty() ? "" : ind) + lines[k];
    }
    return Value::string(first ? ind + rv : rv);
  }
  if (n == "first" || n == "last") {
    List items = iterate(v);
    if (items.empty()) return Value::undefined(cat("No ", n, " item, sequence was empty."));
    return n == "first" ? items.front() : items.back();
  }
  if (n == "list") return list_of(iterate(v));
  if (n == "reverse") {
    if (v.is_string()) {
      std::vector<uint32_t> cps = decode_utf8(v.s);
      std::reverse(cps.begin(), cps.end());
      return Value::string(encode_utf8(cps, 0, cps.size()));
    }
    List items = iterate(v);
    std::reverse(items.begin(), items.end());
    return list_of(std::move(items));
  }
  if (n == "items") {
    if (v.is_undefined()) return list_of({});
    if (!v.is_dict()) throw RuntimeError(cat("can only get item pairs from a mapping, not ", v.type_name()));
    List out;
    for (const auto& kv : v.dict->items) out.push_back(Value::make_list({Value::string(kv.first), kv.second}, true));
    return list_of(std::move(out));
  }
  if (n == "dictsort") {
    if (!v.is_dict()) throw RuntimeError("dictsort expects a mapping");
    bool cs = arg_bool(a, 0, "case_sensitive", false);
    auto by = arg_str(a, 1, "by").value_or("key");
    bool rev = arg_bool(a, 2, "reverse", false);
    List out;
    for (const auto& kv : v.dict->items) out.push_back(Value::make_list({Value::string(kv.first), kv.second}, true));
    size_t pos = by == "value" ? 1 : 0;
    std::stable_sort(out.begin(), out.end(), [&](const Value& x, const Value& y) {
      return rev ? less_for_sort((*y.list)[pos], (*x.list)[pos], cs) : less_for_sort((*x.list)[pos], (*y.list)[pos], cs);
    });
    return list_of(std::move(out));
  }
  if (n == "join") {
    std::string sep = arg_str(a, 0, "d").value_or("");
    auto attr = arg_str(a, 1, "attribute");
    std::string out;
    bool first = true;
    for (const auto& item : iterate(v)) {
      if (!first) out += sep;
      first = false;
      out += py_str(attr ? attr_path(item, *attr) : item);
    }
    return Value::string(out);
  }
  if (n == "map") {
    List out;
    if (auto attr = arg_str(a, 99, "attribute")) {
      const Value* dflt = arg(a, 99, "default");
      for (const auto& item : iterate(v)) {
        Value x = attr_path(item, *attr);
        out.push_back(x.is_undefined() && dflt ? *dflt : x);
      }
      return list_of(std::move(out));
    }
    std::string fname = need_str(a, 0, "filter");
    if (!has_filter(fname)) throw RuntimeError(cat("no filter named '", fname, "'"));
    CallArgs rest;
    rest.pos.assign(a.pos.begin() + 1, a.pos.end());
    rest.kw = a.kw;
    for (const auto& item : iterate(v)) out.push_back(apply_filter(fname, item, rest));
    return list_of(std::move(out));
  }
  if (n == "select") return select_items(v, a, false, true);
  if (n == "reject") return select_items(v, a, false, false);
  if (n == "selectattr") return select_items(v, a, true, true);
  if (n == "rejectattr") return select_items(v, a, true, false);
  if (n == "attr") return get_attr(v, need_str(a, 0, "name"));
  if (n == "sort" || n == "unique" || n == "min" || n == "max") {
    bool rev = n == "sort" && arg_bool(a, 0, "reverse", false);
    bool cs = arg_bool(a, n == "sort" ? 1 : 0, "case_sensitive", false);
    auto attr = arg_str(a, n == "sort" ? 2 : 1, "attribute");
    List items = iterate(v);
    auto key = [&](const Value& x) { return attr ? attr_path(x, *attr) : x; };
    if (n == "unique") {
      List out;
      List seen;
      for (const auto& x : items) {
        Value k = key(x);
        if (k.is_string() && !cs) k = Value::string(py_lower(k.s));
        bool dup = false;
        for (const auto& s : seen) dup |= py_equal(s, k);
        if (!dup) {
          seen.push_back(k);
          out.push_back(x);
        }
      }
      return list_of(std::move(out));
    }
    if (n == "min" || n == "max") {
      if (items.empty()) return Value::undefined(cat("No aggregated item, sequence was empty."));
      size_t best = 0;
      for (size_t k = 1; k < items.size(); ++k) {
        bool better = n == "min" ? less_for_sort(key(items[k]), key(items[best]), cs)
                                 : less_for_sort(key(items[best]), key(items[k]), cs);
        if (better) best = k;
      }
      return items[best];
    }
    std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
      return rev ? less_for_sort(key(y), key(x), cs) : less_for_sort(key(x), key(y), cs);
    });
    return list_of(std::move(items));
  }
  if (n == "sum") {
    auto attr = arg_str(a, 0, "attribute");
    const Value* start = arg(a, 1, "start");
    Value acc = start ? *start : Value::integer(0);
    for (const auto& item : iterate(v)) acc = binary_op("+", acc, attr ? attr_path(item, *attr) : item);
    return acc;
  }
  if (n == "abs") {
    if (v.kind == K::Float) return Value::number(std::fabs(v.f));
    if (v.is_integer()) return Value::integer(std::llabs(v.as_int()));
    throw RuntimeError(cat("bad operand type for abs(): '", v.type_name(), "'"));
  }
  if (n == "int" || n == "float") {
    const Value* d = arg(a, 0, "default");
    Value dflt = d ? *d : (n == "int" ? Value::integer(0) : Value::number(0.0));
    if (v.is_number()) return n == "int" ? Value::integer(v.kind == K::Float ? int64_t(v.f) : v.as_int()) : Value::number(v.as_double());
    if (!v.is_string()) return dflt;
    std::string s = py_strip(v.s, std::nullopt, true, true);
    char* end = nullptr;
    if (n == "int") {
      long long x = std::strtoll(s.c_str(), &end, int(arg_int(a, 1, "base", 10)));
      if (!s.empty() && end && *end == 0) return Value::integer(x);
      double f = std::strtod(s.c_str(), &end);  // Jinja falls back to int(float(s))
      if (!s.empty() && end && *end == 0 && std::isfinite(f)) return Value::integer(int64_t(f));
      return dflt;
    }
    double f = std::strtod(s.c_str(), &end);
    return !s.empty() && end && *end == 0 ? Value::number(f) : dflt;
  }
  if (n == "round") {
    if (!v.is_number()) throw RuntimeError("round needs a number");
    int64_t prec = arg_int(a, 0, "precision", 0);
    std::string method = arg_str(a, 1, "method").value_or("common");
    double x = v.as_double();
    double m = std::pow(10.0, double(prec));
    if (method == "common") return Value::number(py_round(x, prec));
    if (method == "ceil") return Value::number(std::ceil(x * m) / m);
    if (method == "floor") return Value::number(std::floor(x * m) / m);
    throw RuntimeError("method must be common, ceil or floor");
  }
  throw RuntimeError(cat("no filter named '", n, "'"));
}

}  // namespace safekey::text::jinja
