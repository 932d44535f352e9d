// JSON helpers over nlohmann::json: parse with file/line context and typed field access whose
// errors name where the value came from ("config.json: field 'hidden_size': expected integer").
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "safekey/util/error.h"

namespace safekey {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

// Parses `text`; on failure throws Error "<where>: invalid JSON at byte N: ...".
json parse_json(const std::string& text, const std::string& where);
json read_json_file(const std::string& path);

// Required field of a given type. `where` names the file/record for the message.
template <typename T>
T json_get(const json& obj, const char* key, const std::string& where) {
  SK_CHECK(obj.is_object(), where, ": expected a JSON object");
  auto it = obj.find(key);
  SK_CHECK(it != obj.end(), where, ": missing field '", key, "'");
  try {
    return it->template get<T>();
  } catch (const std::exception&) {
    fail(where, ": field '", key, "' has the wrong type (", it->type_name(), ")");
  }
}

// Optional field: `fallback` when absent or null.
template <typename T>
T json_get_or(const json& obj, const char* key, T fallback, const std::string& where) {
  if (!obj.is_object()) return fallback;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  try {
    return it->template get<T>();
  } catch (const std::exception&) {
    fail(where, ": field '", key, "' has the wrong type (", it->type_name(), ")");
  }
}

}  // namespace safekey
