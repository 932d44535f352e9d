// Values of the chat-template interpreter (a Jinja subset with Python semantics): undefined, none,
// bool, int, float, string (UTF-8; lengths and indices count code points as Python's str does),
// list/tuple, dict (insertion-ordered, string keys), namespace and callables. Lists and dicts are
// shared and never mutated after construction (templates run in an immutable sandbox, as
// transformers renders them); a namespace is the one mutable object (`set ns.attr = ...`).
// Printing follows Python's str()/repr(); tojson follows json.dumps(ensure_ascii=False).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "safekey/util/json.h"

namespace safekey::text::jinja {

struct Value;
using List = std::vector<Value>;

// Insertion-ordered mapping with string keys (Python dict as JSON gives it).
struct Dict {
  std::vector<std::pair<std::string, Value>> items;
  const Value* find(const std::string& key) const;
  void set(const std::string& key, Value v);
};

struct CallArgs {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
};
using Function = std::function<Value(const CallArgs&)>;

struct Value {
  enum class Kind : uint8_t { Undefined, None, Bool, Int, Float, String, List, Dict, Namespace, Function };
  Kind kind = Kind::Undefined;
  bool is_tuple = false;  // List printed as (a, b)
  bool b = false;
  int64_t i = 0;
  double f = 0.0;
  std::string s;  // String; for Undefined: what was looked up (for error messages)
  std::shared_ptr<const List> list;
  std::shared_ptr<Dict> dict;  // Dict (shared, never mutated once built) and Namespace (mutable)
  std::shared_ptr<const Function> fn;

  Value() = default;
  static Value undefined(std::string hint = "");
  static Value none();
  static Value boolean(bool v);
  static Value integer(int64_t v);
  static Value number(double v);
  static Value string(std::string v);
  static Value make_list(List items, bool tuple = false);
  static Value make_dict(Dict d);
  static Value make_namespace(Dict d);
  static Value function(Function f);

  bool is_undefined() const { return kind == Kind::Undefined; }
  bool is_none() const { return kind == Kind::None; }
  bool is_string() const { return kind == Kind::String; }
  bool is_list() const { return kind == Kind::List; }
  bool is_dict() const { return kind == Kind::Dict; }
  bool is_number() const { return kind == Kind::Int || kind == Kind::Float || kind == Kind::Bool; }
  bool is_integer() const { return kind == Kind::Int || kind == Kind::Bool; }
  double as_double() const { return kind == Kind::Float ? f : kind == Kind::Bool ? (b ? 1.0 : 0.0) : double(i); }
  int64_t as_int() const { return kind == Kind::Bool ? (b ? 1 : 0) : i; }

  // Python truthiness.
  bool truthy() const;
  // Python type name, for messages ("str", "int", "list", "dict", "NoneType", ...).
  const char* type_name() const;
};

// From JSON (objects keep the key order of the document with ordered_json).
Value from_json(const json& j);
Value from_json(const ordered_json& j);
// Back to JSON (undefined -> error; namespace and functions cannot be converted).
ordered_json to_json(const Value& v);

// Python str() and repr().
std::string py_str(const Value& v);
std::string py_repr(const Value& v);
// Python repr() of a float ("1.0", "0.1", "1e+16", "1.5e-07").
std::string py_float_repr(double x);
// Python ==, and the ordering < (throws Error for unorderable types).
bool py_equal(const Value& a, const Value& b);
bool py_less(const Value& a, const Value& b);
// json.dumps(v, ensure_ascii=False, indent=indent (-1 = none), separators=(item_sep, key_sep), sort_keys).
std::string py_json_dumps(const Value& v, int indent = -1, const std::string& item_sep = "",
                          const std::string& key_sep = "", bool sort_keys = false);

}  // namespace safekey::text::jinja
