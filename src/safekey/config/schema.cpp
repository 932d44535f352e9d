#include "safekey/config/schema.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "safekey/util/error.h"

namespace safekey::config {

namespace {

// Spellings compare with '-' and '.' read as '_': `lora.r`, `lora_r` and `lora-r` are one name.
std::string canonical(std::string s) {
  std::replace(s.begin(), s.end(), '-', '_');
  std::replace(s.begin(), s.end(), '.', '_');
  return s;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep))
    if (!cur.empty()) out.push_back(cur);
  return out;
}

bool parse_bool(const std::string& v, bool* out) {
  static const char* yes[] = {"true", "True", "TRUE", "1", "yes", "on"};
  static const char* no[] = {"false", "False", "FALSE", "0", "no", "off"};
  for (const char* y : yes)
    if (v == y) return *out = true, true;
  for (const char* n : no)
    if (v == n) return *out = false, true;
  return false;
}

std::string article_type(Type t) {
  return t == Type::Int ? "an integer" : t == Type::Float ? "a number" : t == Type::Bool ? "true or false"
         : t == Type::List ? "a list (YAML sequence, JSON array or comma-separated text)" : "a string";
}

void check_choice(const Option& o, const std::string& v, const std::string& where) {
  if (o.choices.empty()) return;
  for (const auto& c : split(o.choices, '|'))
    if (c == v) return;
  fail(where, ": ", o.key, ": expected one of ", o.choices, ", got '", v, "'");
}

// Every spelling of an option (canonical), for lookup and for the collision check.
std::vector<std::string> spellings(const Option& o) {
  std::vector<std::string> s;
  if (!o.key.empty()) s.push_back(canonical(o.key)), s.push_back(canonical(run_key(o)));
  if (!o.flag.empty()) s.push_back(canonical(o.flag));
  for (const auto& a : split(o.aliases, ',')) s.push_back(canonical(a));
  std::sort(s.begin(), s.end());
  s.erase(std::unique(s.begin(), s.end()), s.end());
  return s;
}

std::string value_or_flag(const Option& o) { return o.key.empty() ? "--" + o.flag : o.key; }

std::string md_escape(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '|' ? std::string("\\|") : std::string(1, c);
  return out;
}

}  // namespace

const char* type_name(Type t) {
  switch (t) {
    case Type::Int: return "integer";
    case Type::Float: return "number";
    case Type::Bool: return "boolean";
    case Type::String: return "string";
    case Type::List: return "list";
  }
  return "?";
}

std::string run_key(const Option& o) {
  if (!o.json_key.empty()) return o.json_key;
  std::string k = o.key;
  std::replace(k.begin(), k.end(), '.', '_');
  return k;
}

json parse_text(const Option& o, const std::string& text, const std::string& where) {
  const std::string name = value_or_flag(o);
  auto bad = [&]() -> json { fail(where, ": ", name, ": expected ", article_type(o.type), ", got '", text, "'"); };
  switch (o.type) {
    case Type::Int: {
      char* end = nullptr;
      errno = 0;
      long long x = std::strtoll(text.c_str(), &end, 10);
      if (text.empty() || *end != '\0' || errno == ERANGE) return bad();
      return static_cast<int64_t>(x);
    }
    case Type::Float: {
      char* end = nullptr;
      double x = std::strtod(text.c_str(), &end);
      if (text.empty() || *end != '\0' || !std::isfinite(x)) return bad();
      return x;
    }
    case Type::Bool: {
      bool b = false;
      if (!parse_bool(text, &b)) return bad();
      return b;
    }
    case Type::String:
      check_choice(o, text, where);
      return text;
    case Type::List: {
      json a = json::array();
      for (const auto& s : split(text, ',')) a.push_back(s);
      return a;
    }
  }
  return bad();
}

json from_json(const Option& o, const json& v, const std::string& where) {
  const std::string name = value_or_flag(o);
  auto bad = [&]() -> json {
    fail(where, ": ", name, ": expected ", article_type(o.type), ", got ", v.is_null() ? "no value" : v.dump());
  };
  if (v.is_string()) return parse_text(o, v.get<std::string>(), where);
  switch (o.type) {
    case Type::Int:
      if (v.is_number_integer()) return v.get<int64_t>();
      if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>()) return static_cast<int64_t>(v.get<double>());
      return bad();
    case Type::Float:
      if (v.is_number()) return v.get<double>();
      return bad();
    case Type::Bool:
      if (v.is_boolean()) return v.get<bool>();
      return bad();
    case Type::String:
      return bad();
    case Type::List: {
      if (!v.is_array()) return bad();
      json a = json::array();
      for (const auto& e : v) {
        if (!e.is_string() && !e.is_number()) return bad();
        a.push_back(e.is_string() ? e.get<std::string>() : e.dump());
      }
      return a;
    }
  }
  return bad();
}

std::string to_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_float()) {
    // The shortest text that reads back as the same double (1e-05, 0.95, 600 rather than 6e+02).
    std::string best;
    char buf[40];
    for (int prec = 1; prec <= 17; ++prec) {
      std::snprintf(buf, sizeof buf, "%.*g", prec, v.get<double>());
      if (std::strtod(buf, nullptr) == v.get<double>() && (best.empty() || std::string(buf).size() < best.size()))
        best = buf;
    }
    return best;
  }
  if (v.is_array()) {
    std::string s;
    for (const auto& e : v) s += (s.empty() ? "" : ",") + to_text(e);
    return s;
  }
  return v.dump();
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

Schema::Schema(std::vector<Option> options) : options_(std::move(options)) {
  for (size_t i = 0; i < options_.size(); ++i) {
    const Option& o = options_[i];
    SK_CHECK(!o.key.empty() || !o.flag.empty(), "internal: an option has neither a key nor a flag");
    if (!o.default_value.empty() && !o.key.empty()) parse_text(o, o.default_value, "internal: default of " + o.key);
    for (const auto& s : spellings(o)) {
      auto [it, fresh] = by_spelling_.emplace(s, i);
      SK_CHECK(fresh, "internal: the spelling '", s, "' names two options: '", value_or_flag(options_[it->second]),
               "' and '", value_or_flag(o), "'");
    }
  }
}

const Option* Schema::find(const std::string& spelling) const {
  auto it = by_spelling_.find(canonical(spelling));
  return it == by_spelling_.end() ? nullptr : &options_[it->second];
}

const Option& Schema::at(const std::string& key) const {
  for (const auto& o : options_)
    if (o.key == key) return o;
  fail("internal: no option with the key '", key, "'");
}

std::string Schema::nearest(const std::string& spelling) const {
  const std::string want = canonical(spelling);
  std::string best;
  size_t best_d = SIZE_MAX;
  for (const auto& o : options_) {
    if (o.key.empty()) continue;  // flag-only options are never a config key
    for (const auto& s : spellings(o)) {
      // A cut-short spelling (`warmup` for `warmup_ratio`) is near too: its distance to s's start + 1.
      const size_t d = std::min(edit_distance(want, s), edit_distance(want, s.substr(0, want.size())) + 1);
      if (d < best_d) best_d = d, best = o.key;
    }
  }
  return best;
}

std::string Schema::markdown() const {
  std::ostringstream md;
  std::string section = "\x01";
  for (const auto& o : options_) {
    if (o.section != section) {
      section = o.section;
      md << (md.tellp() > 0 ? "\n" : "") << "**" << section << "**\n\n"
         << "| key | flag (other spellings) | type | default | defines the run | what |\n"
         << "|---|---|---|---|---|---|\n";
    }
    std::string flag = o.flag.empty() ? "" : "`--" + o.flag + "`";
    if (!o.aliases.empty()) {
      std::string a;
      for (const auto& s : split(o.aliases, ',')) a += (a.empty() ? "" : ", ") + ("`" + s + "`");
      flag += " (" + a + ")";
    }
    std::string type = o.choices.empty() ? type_name(o.type) : md_escape(o.choices);
    std::string dflt = o.default_value.empty() ? "" : "`" + o.default_value + "`";
    if (!o.env.empty()) dflt += " (env `" + o.env + "`)";
    md << "| " << (o.key.empty() ? "(flag only)" : "`" + o.key + "`") << " | " << flag << " | " << type << " | "
       << dflt << " | " << (o.defines_run ? "yes" : "") << " | " << md_escape(o.help) << " |\n";
  }
  return md.str();
}

}  // namespace safekey::config
