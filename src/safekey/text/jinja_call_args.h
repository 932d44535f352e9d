// Argument access shared by the template filters and the str/dict/list methods (internal).
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "safekey/text/jinja_builtins.h"

namespace safekey::text::jinja {

// Positional-or-keyword argument `idx`/`name`, or null when absent.
inline const Value* arg(const CallArgs& a, size_t idx, const char* name) {
  if (idx < a.pos.size()) return &a.pos[idx];
  for (const auto& kw : a.kw)
    if (kw.first == name) return &kw.second;
  return nullptr;
}
inline bool arg_bool(const CallArgs& a, size_t idx, const char* name, bool dflt) {
  const Value* v = arg(a, idx, name);
  return v ? v->truthy() : dflt;
}
inline int64_t arg_int(const CallArgs& a, size_t idx, const char* name, int64_t dflt) {
  const Value* v = arg(a, idx, name);
  if (!v || v->is_none()) return dflt;
  if (!v->is_integer()) throw RuntimeError(cat("argument '", name, "' must be an integer"));
  return v->as_int();
}
inline std::optional<std::string> arg_str(const CallArgs& a, size_t idx, const char* name) {
  const Value* v = arg(a, idx, name);
  if (!v || v->is_none()) return std::nullopt;
  if (!v->is_string()) throw RuntimeError(cat("argument '", name, "' must be a string, not ", v->type_name()));
  return v->s;
}
inline std::string need_str(const CallArgs& a, size_t idx, const char* name) {
  auto s = arg_str(a, idx, name);
  if (!s) throw RuntimeError(cat("missing argument '", name, "'"));
  return *s;
}

inline Value list_of(List l) { return Value::make_list(std::move(l)); }

}  // namespace safekey::text::jinja
