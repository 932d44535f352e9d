// Methods of str, dict and list that templates call (`s.strip('\n')`), with Python's behaviour.
#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>
#include <string_view>

#include "safekey/text/jinja_builtins.h"
#include "safekey/text/jinja_call_args.h"
#include "safekey/text/jinja_pystr.h"

namespace safekey::text::jinja {
namespace {

std::string py_str_format(const std::string& fmt, const CallArgs& a) {
  std::string out;
  size_t auto_idx = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c == '{' && i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out += '{';
      ++i;
    } else if (c == '}' && i + 1 < fmt.size() && fmt[i + 1] == '}') {
      out += '}';
      ++i;
    } else if (c == '{') {
      size_t close = fmt.find('}', i);
      if (close == std::string::npos) throw RuntimeError("Single '{' encountered in format string");
      std::string field = fmt.substr(i + 1, close - i - 1);
      if (field.find_first_of(":!") != std::string::npos) throw RuntimeError("format specs are not supported in str.format");
      const Value* v = nullptr;
      if (field.empty()) {
        if (auto_idx >= a.pos.size()) throw RuntimeError("Replacement index out of range for positional args tuple");
        v = &a.pos[auto_idx++];
      } else if (std::all_of(field.begin(), field.end(), ::isdigit)) {
        size_t k = size_t(std::atoll(field.c_str()));
        if (k >= a.pos.size()) throw RuntimeError("Replacement index out of range for positional args tuple");
        v = &a.pos[k];
      } else {
        for (const auto& kw : a.kw)
          if (kw.first == field) v = &kw.second;
        if (!v) throw RuntimeError(cat("KeyError: '", field, "'"));
      }
      out += py_str(*v);
      i = close;
    } else if (c == '}') {
      throw RuntimeError("Single '}' encountered in format string");
    } else {
      out += c;
    }
  }
  return out;
}

const char* const kStrMethods[] = {"strip", "lstrip", "rstrip", "split", "rsplit", "splitlines", "startswith",
                                   "endswith", "upper", "lower", "title", "capitalize", "replace", "format", "find",
                                   "rfind", "index", "rindex", "count", "join", "isdigit", "isalpha", "isalnum",
                                   "isspace", "isupper", "islower"};
const char* const kDictMethods[] = {"items", "keys", "values", "get"};
const char* const kListMethods[] = {"index", "count"};
const char* const kUnsafe[] = {"append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear",
                               "update", "popitem", "setdefault"};

template <size_t N>
bool in(const char* const (&names)[N], const std::string& n) {
  for (const char* x : names)
    if (n == x) return true;
  return false;
}

bool all_cps(const std::string& s, bool (*pred)(uint32_t)) {
  std::vector<uint32_t> cps = decode_utf8(s);
  return !cps.empty() && std::all_of(cps.begin(), cps.end(), pred);
}
bool cat_is(uint32_t cp, char major) {
  const char* c = utf8proc_category_string(utf8proc_int32_t(cp));
  return c && c[0] == major;
}
}  // namespace

bool has_method(const Value& obj, const std::string& n) {
  if (obj.is_string()) return in(kStrMethods, n);
  if (obj.is_dict()) return in(kDictMethods, n) || in(kUnsafe, n);
  if (obj.is_list()) return in(kListMethods, n) || in(kUnsafe, n);
  return false;
}

Value call_method(const Value& obj, const std::string& n, const CallArgs& a) {
  if (in(kUnsafe, n))
    throw RuntimeError(cat("access to attribute '", n, "' of '", obj.type_name(), "' object is unsafe."));
  if (obj.is_dict()) {
    if (n == "get") {
      const Value* k = arg(a, 0, "key");
      if (!k) throw RuntimeError("get expected at least 1 argument");
      if (k->is_string())
        if (const Value* v = obj.dict->find(k->s)) return *v;
      const Value* d = arg(a, 1, "default");
      return d ? *d : Value::none();
    }
    List out;
    for (const auto& kv : obj.dict->items) {
      if (n == "keys") out.push_back(Value::string(kv.first));
      else if (n == "values") out.push_back(kv.second);
      else out.push_back(Value::make_list({Value::string(kv.first), kv.second}, true));
    }
    return list_of(std::move(out));
  }
  if (obj.is_list()) {
    const Value* x = arg(a, 0, "value");
    if (!x) throw RuntimeError(cat(n, "() takes exactly one argument"));
    int64_t count = 0;
    for (size_t k = 0; k < obj.list->size(); ++k) {
      if (!py_equal((*obj.list)[k], *x)) continue;
      if (n == "index") return Value::integer(int64_t(k));
      ++count;
    }
    if (n == "index") throw RuntimeError(cat(py_repr(*x), " is not in list"));
    return Value::integer(count);
  }
  const std::string& s = obj.s;
  if (n == "strip" || n == "lstrip" || n == "rstrip")
    return Value::string(py_strip(s, arg_str(a, 0, "chars"), n != "rstrip", n != "lstrip"));
  if (n == "split" || n == "rsplit") {
    auto sep = arg_str(a, 0, "sep");
    if (sep && sep->empty()) throw RuntimeError("empty separator");
    int64_t maxsplit = arg_int(a, 1, "maxsplit", -1);
    List out;
    for (auto& part : n == "split" ? py_split(s, sep, maxsplit) : py_rsplit(s, sep, maxsplit))
      out.push_back(Value::string(part));
    return list_of(std::move(out));
  }
  if (n == "splitlines") {
    List out;
    for (auto& line : py_splitlines(s, arg_bool(a, 0, "keepends", false))) out.push_back(Value::string(line));
    return list_of(std::move(out));
  }
  if (n == "startswith" || n == "endswith") {
    const Value* p = arg(a, 0, "prefix");
    if (!p) throw RuntimeError(cat(n, "() takes at least 1 argument"));
    std::vector<uint32_t> cps = decode_utf8(s);
    std::vector<int64_t> idx = py_slice_indices(int64_t(cps.size()), a.pos.size() > 1 && !a.pos[1].is_none() ? std::optional<int64_t>(a.pos[1].as_int()) : std::nullopt,
                                                a.pos.size() > 2 && !a.pos[2].is_none() ? std::optional<int64_t>(a.pos[2].as_int()) : std::nullopt, 1);
    std::string sub = idx.empty() ? std::string() : encode_utf8(cps, size_t(idx.front()), size_t(idx.back()) + 1);
    List options = p->is_list() ? *p->list : List{*p};
    for (const auto& o : options) {
      if (!o.is_string()) throw RuntimeError(cat(n, " first arg must be str or a tuple of str, not ", o.type_name()));
      bool hit = n == "startswith" ? sub.compare(0, o.s.size(), o.s) == 0 && sub.size() >= o.s.size()
                                   : sub.size() >= o.s.size() && sub.compare(sub.size() - o.s.size(), o.s.size(), o.s) == 0;
      if (hit) return Value::boolean(true);
    }
    return Value::boolean(false);
  }
  if (n == "upper") return Value::string(py_upper(s));
  if (n == "lower") return Value::string(py_lower(s));
  if (n == "title") return Value::string(py_title(s));
  if (n == "capitalize") return Value::string(py_capitalize(s));
  if (n == "replace") return Value::string(py_replace(s, need_str(a, 0, "old"), need_str(a, 1, "new"), arg_int(a, 2, "count", -1)));
  if (n == "format") return Value::string(py_str_format(s, a));
  if (n == "find" || n == "rfind" || n == "index" || n == "rindex" || n == "count") {
    std::string sub = need_str(a, 0, "sub");
    if (n == "count") {
      if (sub.empty()) return Value::integer(int64_t(count_code_points(s)) + 1);
      int64_t c = 0;
      for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++c;
      return Value::integer(c);
    }
    size_t at = (n == "find" || n == "index") ? s.find(sub) : s.rfind(sub);
    if (at == std::string::npos) {
      if (n == "index" || n == "rindex") throw RuntimeError("substring not found");
      return Value::integer(-1);
    }
    return Value::integer(int64_t(count_code_points(std::string_view(s).substr(0, at))));
  }
  if (n == "join") {
    const Value* it = arg(a, 0, "iterable");
    if (!it) throw RuntimeError("join() takes exactly one argument");
    std::string out;
    bool first = true;
    for (const auto& x : iterate(*it)) {
      if (!x.is_string()) throw RuntimeError(cat("sequence item: expected str instance, ", x.type_name(), " found"));
      if (!first) out += s;
      first = false;
      out += x.s;
    }
    return Value::string(out);
  }
  if (n == "isspace") return Value::boolean(all_cps(s, py_isspace));
  if (n == "isdigit") return Value::boolean(all_cps(s, [](uint32_t c) { return utf8proc_category(utf8proc_int32_t(c)) == UTF8PROC_CATEGORY_ND; }));
  if (n == "isalpha") return Value::boolean(all_cps(s, [](uint32_t c) { return cat_is(c, 'L'); }));
  if (n == "isalnum") return Value::boolean(all_cps(s, [](uint32_t c) { return cat_is(c, 'L') || cat_is(c, 'N'); }));
  if (n == "isupper" || n == "islower") {
    bool cased = false;
    for (uint32_t cp : decode_utf8(s)) {
      auto c = utf8proc_int32_t(cp);
      if (utf8proc_toupper(c) == c && utf8proc_tolower(c) == c) continue;
      cased = true;
      if (n == "isupper" ? utf8proc_toupper(c) != c : utf8proc_tolower(c) != c) return Value::boolean(false);
    }
    return Value::boolean(cased);
  }
  throw RuntimeError(cat("'str' object has no attribute '", n, "'"));
}

}  // namespace safekey::text::jinja
