// Option schemas: one table per program of the options it takes — config key, command-line flag,
// the reference's spellings, type, default, help, and whether the option defines the run — and what
// comes from that table: typed values from command-line text, from JSON or YAML config files (nested
// keys with dots: `lora: {r: 16}` is `lora.r`) and from `key=value` overrides, errors that name the
// file, line, key and the nearest known key, and the Markdown table of the docs.
// The training options of `safekey train` are one such table (train/options.h).
// No libtorch: this is below every layer that trains.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "safekey/util/json.h"

namespace safekey::config {

enum class Type { Int, Float, Bool, String, List };

// "integer", "number", "boolean", "string", "list" (as error messages and the docs say them).
const char* type_name(Type t);

struct Option {
  std::string key;            // config key; a dot puts it in a section ("lora.r"); "" = flag only
  std::string flag;           // command-line flag without "--", kebab-case ("" = config key only)
  std::string aliases;        // comma-separated other spellings (HF Trainer, the reference's train/sft.py)
  Type type = Type::String;
  std::string default_value;  // as text; "" = none
  std::string choices;        // "a|b|c" when only these values are valid ("" = any)
  std::string help;
  bool defines_run = false;   // changes what is learned: saved in run_config.json, compared on resume
  std::string env;            // environment variable that overrides the default ("" = none)
  std::string shared_with;    // other subcommands that take the same flag ("loss"; "" = none)
  std::string section;        // heading of the docs table
  std::string json_key;       // key in run_config.json when not the config key with '.' -> '_'
  bool repeatable = false;    // command line: may be given several times (values joined with '\n')
};

// The key an option has in a saved run config (run_config.json): "lora.r" -> "lora_r".
std::string run_key(const Option& o);

// Typed value of an option as JSON (integer, number, boolean, string, array of strings).
// From text (command line, YAML scalar): `where` prefixes the error ("recipe.yaml:4").
json parse_text(const Option& o, const std::string& text, const std::string& where);
// From a JSON value (a JSON config file); strings are parsed as text.
json from_json(const Option& o, const json& v, const std::string& where);
// Back to the command line's text: 1e-05 -> "1e-05", true -> "true", lists comma-joined.
std::string to_text(const json& v);

// Levenshtein distance (insertions, deletions, substitutions each cost 1).
size_t edit_distance(const std::string& a, const std::string& b);

class Schema {
 public:
  // Fails when two options share a spelling (key, run key, flag or alias; '-' and '.' count as '_').
  explicit Schema(std::vector<Option> options);
  const std::vector<Option>& options() const { return options_; }
  // The option spelled `spelling` in a config file or an override: its key, its run_config.json key,
  // its flag or an alias, with '-' and '_' and '.' interchangeable. Null when unknown.
  const Option* find(const std::string& spelling) const;
  // The option with this key (an internal error when there is none).
  const Option& at(const std::string& key) const;
  // The config key closest to `spelling` by edit distance (a key that `spelling` starts counts as
  // distance 1: `warmup` -> `warmup_ratio`).
  std::string nearest(const std::string& spelling) const;
  // The options as Markdown tables, one per section (the generated part of docs/training.md).
  std::string markdown() const;

 private:
  std::vector<Option> options_;
  std::map<std::string, size_t> by_spelling_;  // canonical spelling -> index
};

// The values of the options that have a config key, each with where it came from. Precedence is
// the order of the calls: defaults (+ environment) at construction, then config files, then flags,
// then overrides; a later call wins. Flag-only options stay with the command line.
class Values {
 public:
  explicit Values(const Schema& schema, bool read_env = true);
  const Schema& schema() const { return *schema_; }

  // Sets an option from text (a flag's value or an override's). `where`: "--learning-rate", ...
  void set_text(const Option& o, const std::string& text, const std::string& where);
  // Reads a config file: YAML (.yaml / .yml) or JSON (.json; other names: JSON when the text
  // starts with '{'). Keys nest (`lora: {r: 16}`) or use dots (`lora.r: 16`). Unknown keys, wrong
  // types and an option set twice in one file are errors naming the file, the line (YAML) and the key.
  void merge_file(const std::string& path);
  // `key=value` from the command line.
  void apply_override(const std::string& arg);

  const json& get(const std::string& key) const;
  const std::string& origin(const std::string& key) const;  // "default", "recipe.yaml:4", "--lr", ...
  bool is_default(const std::string& key) const { return origin(key) == "default"; }

 private:
  void set(const Option& o, json v, const std::string& where);
  const Schema* schema_;
  std::map<std::string, json> values_;  // by key
  std::map<std::string, std::string> origins_;
};

}  // namespace safekey::config
