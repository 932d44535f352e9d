// config::Values: defaults, environment, config files (YAML via yaml-cpp, JSON via nlohmann) and
// `key=value` overrides, in that order of precedence.
#include <yaml-cpp/yaml.h>

#include <cstdlib>

#include "safekey/config/schema.h"
#include "safekey/util/error.h"
#include "safekey/util/file.h"

namespace safekey::config {

namespace {

// One leaf of a config file: the dotted key as written, its value (YAML scalars as JSON strings,
// sequences as arrays of strings, null as null) and where it is ("recipe.yaml:7").
struct Entry {
  std::string key;
  json value;
  std::string where;
};

std::string yaml_where(const std::string& path, const YAML::Mark& m) {
  return m.line >= 0 ? cat(path, ":", m.line + 1) : path;
}

json yaml_leaf(const YAML::Node& n, const std::string& path, const std::string& where, const std::string& key) {
  if (n.IsNull()) return nullptr;
  if (n.IsScalar()) return n.Scalar();
  SK_CHECK(n.IsSequence(), where, ": ", key, ": expected a value or a list, got a mapping");
  json a = json::array();
  for (const auto& e : n) {
    SK_CHECK(e.IsScalar(), yaml_where(path, e.Mark()), ": ", key, ": a list may hold only plain values");
    a.push_back(e.Scalar());
  }
  return a;
}

// Leaves of a YAML mapping; a mapping under a key that is not an option is a section (`lora:`).
void flatten_yaml(const YAML::Node& map, const std::string& prefix, const std::string& path, const Schema& schema,
                  std::vector<Entry>& out) {
  for (auto it = map.begin(); it != map.end(); ++it) {
    const std::string where = yaml_where(path, it->first.Mark());
    SK_CHECK(it->first.IsScalar(), where, ": a key must be plain text");
    const std::string key = prefix.empty() ? it->first.Scalar() : prefix + "." + it->first.Scalar();
    if (it->second.IsMap() && !schema.find(key)) {
      flatten_yaml(it->second, key, path, schema, out);
      continue;
    }
    out.push_back({key, yaml_leaf(it->second, path, where, key), where});
  }
}

void flatten_json(const json& obj, const std::string& prefix, const std::string& path, const Schema& schema,
                  std::vector<Entry>& out) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    const std::string key = prefix.empty() ? it.key() : prefix + "." + it.key();
    if (it->is_object() && !schema.find(key)) {
      flatten_json(*it, key, path, schema, out);
      continue;
    }
    out.push_back({key, *it, path});
  }
}

bool is_yaml_path(const std::string& path) {
  auto ends = [&](const char* ext) {
    const std::string e(ext);
    return path.size() >= e.size() && path.compare(path.size() - e.size(), e.size(), e) == 0;
  };
  return ends(".yaml") || ends(".yml");
}

std::vector<Entry> read_entries(const std::string& path, const Schema& schema) {
  SK_CHECK(path_exists(path), path, ": no such config file");
  const std::string text = read_file(path);
  std::vector<Entry> out;
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (!is_yaml_path(path) && (first == std::string::npos || text[first] == '{')) {
    const json j = parse_json(text, path);
    SK_CHECK(j.is_object(), path, ": expected a JSON object of option keys to values");
    flatten_json(j, "", path, schema, out);
    return out;
  }
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    fail(yaml_where(path, e.mark), ": invalid YAML: ", e.msg);
  }
  if (root.IsNull()) return out;  // an empty file
  SK_CHECK(root.IsMap(), path, ": expected a YAML mapping of option keys to values");
  flatten_yaml(root, "", path, schema, out);
  return out;
}

}  // namespace

Values::Values(const Schema& schema, bool read_env) : schema_(&schema) {
  for (const auto& o : schema.options()) {
    if (o.key.empty()) continue;
    values_[o.key] = o.default_value.empty() && o.type != Type::String && o.type != Type::List
                         ? json(nullptr)
                         : parse_text(o, o.default_value, "default");
    origins_[o.key] = "default";
    if (read_env && !o.env.empty())
      if (const char* e = std::getenv(o.env.c_str()); e && *e) set_text(o, e, "environment " + o.env);
  }
}

void Values::set(const Option& o, json v, const std::string& where) {
  SK_CHECK(!o.key.empty(), "internal: --", o.flag, " is a flag only, not a config key");
  values_[o.key] = std::move(v);
  origins_[o.key] = where;
}

void Values::set_text(const Option& o, const std::string& text, const std::string& where) {
  set(o, parse_text(o, text, where), where);
}

void Values::merge_file(const std::string& path) {
  std::map<std::string, std::string> seen;  // key -> where this file set it
  for (const auto& e : read_entries(path, *schema_)) {
    const Option* o = schema_->find(e.key);
    SK_CHECK(!o || !o->key.empty(), e.where, ": '", e.key, "' is a command-line flag (--", o->flag,
             "), not a config key");
    SK_CHECK(o, e.where, ": unknown key '", e.key, "' (nearest known key: '", schema_->nearest(e.key), "')");
    auto [it, fresh] = seen.emplace(o->key, e.where);
    SK_CHECK(fresh, e.where, ": '", e.key, "' sets ", o->key, ", which this file already sets at ", it->second);
    set(*o, from_json(*o, e.value, e.where), e.where);
  }
}

void Values::apply_override(const std::string& arg) {
  const size_t eq = arg.find('=');
  SK_CHECK(eq != std::string::npos && eq > 0, "command line: '", arg,
           "' is neither a flag nor a key=value override (lr=2e-5, lora.r=16)");
  const std::string key = arg.substr(0, eq);
  const Option* o = schema_->find(key);
  SK_CHECK(!o || !o->key.empty(), "command line: '", key, "' is a flag: write --", o->flag, " instead of '", arg,
           "'");
  SK_CHECK(o, "command line: unknown key '", key, "' in '", arg, "' (nearest known key: '", schema_->nearest(key),
           "')");
  set_text(*o, arg.substr(eq + 1), "override '" + arg + "'");
}

const json& Values::get(const std::string& key) const {
  auto it = values_.find(key);
  SK_CHECK(it != values_.end(), "internal: no option with the key '", key, "'");
  return it->second;
}

const std::string& Values::origin(const std::string& key) const {
  auto it = origins_.find(key);
  SK_CHECK(it != origins_.end(), "internal: no option with the key '", key, "'");
  return it->second;
}

}  // namespace safekey::config
