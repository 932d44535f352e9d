// Built-ins of the template interpreter (internal): operators, filters, tests, methods of str/dict/
// list, and the globals transformers provides. They throw RuntimeError without a position; the
// interpreter adds the template line:column of the expression being evaluated.
#pragma once
#include <stdexcept>
#include <string>

#include "safekey/text/jinja_value.h"

namespace safekey::text::jinja {

struct RuntimeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Raises the error an undefined value carries ("'x' is undefined").
[[noreturn]] void undefined_error(const Value& v);

// Operators: + - * / // % ** ~ and `in`.
Value binary_op(const std::string& op, const Value& a, const Value& b);
bool contains(const Value& container, const Value& item);

// a.name (Python getattr first, then item) and a[key] (item first, then getattr).
Value get_attr(const Value& obj, const std::string& name);
Value get_item(const Value& obj, const Value& key);

bool has_filter(const std::string& name);
bool has_test(const std::string& name);
Value apply_filter(const std::string& name, const Value& v, const CallArgs& args);
bool apply_test(const std::string& name, const Value& v, const CallArgs& args);

// Methods of str, dict and list (`s.strip('\n')`); false when `obj` has no such method.
bool has_method(const Value& obj, const std::string& name);
Value call_method(const Value& obj, const std::string& name, const CallArgs& args);

// range, namespace, dict, raise_exception, strftime_now.
Dict make_globals();

// Iteration as Python's iter(): list items, dict keys, string characters; undefined is empty.
List iterate(const Value& v);

}  // namespace safekey::text::jinja
