#include "cli.h"

#include <algorithm>
#include <cstdlib>
#include <set>
#include <sstream>

#include "safekey/util/error.h"

namespace safekey::cli {

namespace {

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == ',') {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

std::string canonical(std::string s) {
  std::replace(s.begin(), s.end(), '_', '-');
  return s;
}

bool accepts(const Flag& f, const std::string& command) {
  if (std::string(f.commands) == "*") return true;
  for (const auto& c : split_commas(f.commands))
    if (c == command) return true;
  return false;
}

// Finds the flag the command knows under `spelling` (name or alias, either spelling).
const Flag* lookup(const std::string& command, const std::string& spelling) {
  std::string want = canonical(spelling);
  for (const auto& f : flag_table()) {
    if (!accepts(f, command)) continue;
    if (canonical(f.name) == want) return &f;
    for (const auto& a : split_commas(f.aliases))
      if (canonical(a) == want) return &f;
  }
  return nullptr;
}

std::vector<Command>& registry() {
  static std::vector<Command> r;
  return r;
}

bool parse_bool(const std::string& v, bool* out) {
  if (v == "true" || v == "True" || v == "1" || v == "yes") {
    *out = true;
    return true;
  }
  if (v == "false" || v == "False" || v == "0" || v == "no") {
    *out = false;
    return true;
  }
  return false;
}

}  // namespace

void register_command(Command c) { registry().push_back(std::move(c)); }
const std::vector<Command>& commands() { return registry(); }

std::vector<const Flag*> flags_for(const std::string& command) {
  std::vector<const Flag*> out;
  for (const auto& f : flag_table())
    if (accepts(f, command)) out.push_back(&f);
  return out;
}

Args::Args(std::string command, std::map<std::string, std::string> values,
           std::map<std::string, bool> explicit_set, std::vector<std::string> positional)
    : command_(std::move(command)),
      values_(std::move(values)),
      explicit_(std::move(explicit_set)),
      positional_(std::move(positional)) {}

std::string Args::str(const std::string& name) const {
  const Flag* f = lookup(command_, name);
  SK_CHECK(f, "internal: command '", command_, "' reads unknown flag --", name);
  auto it = values_.find(f->name);
  if (it != values_.end()) return it->second;
  if (f->env[0] != '\0') {
    if (const char* e = std::getenv(f->env)) return e;
  }
  return f->default_value;
}

int64_t Args::i64(const std::string& name) const {
  std::string v = str(name);
  try {
    size_t pos = 0;
    long long x = std::stoll(v, &pos);
    SK_CHECK(pos == v.size(), "");
    return x;
  } catch (...) {
    fail("--", name, ": expected an integer, got '", v, "'");
  }
}

double Args::f64(const std::string& name) const {
  std::string v = str(name);
  try {
    size_t pos = 0;
    double x = std::stod(v, &pos);
    SK_CHECK(pos == v.size(), "");
    return x;
  } catch (...) {
    fail("--", name, ": expected a number, got '", v, "'");
  }
}

bool Args::on(const std::string& name) const {
  std::string v = str(name);
  if (v.empty()) return false;
  bool b = false;
  SK_CHECK(parse_bool(v, &b), "--", name, ": expected true or false, got '", v, "'");
  return b;
}

std::vector<std::string> Args::list(const std::string& name) const { return split_commas(str(name)); }

bool Args::given(const std::string& name) const {
  const Flag* f = lookup(command_, name);
  SK_CHECK(f, "internal: command '", command_, "' reads unknown flag --", name);
  return explicit_.count(f->name) > 0;
}

std::string Args::required(const std::string& name) const {
  std::string v = str(name);
  SK_CHECK(!v.empty(), command_, ": --", name, " is required (see safekey ", command_, " --help)");
  return v;
}

json Args::resolved() const {
  json out = json::object();
  for (const Flag* f : flags_for(command_)) out[f->name] = str(f->name);
  return out;
}

void Args::set(const std::string& name, const std::string& value) {
  const Flag* f = lookup(command_, name);
  SK_CHECK(f, "internal: command '", command_, "' sets unknown flag --", name);
  values_[f->name] = value;
  explicit_[f->name] = true;
}

void Args::merge_config_file(const std::string& path) {
  json cfg = read_json_file(path);
  SK_CHECK(cfg.is_object(), path, ": expected a JSON object of flag names to values");
  for (auto it = cfg.begin(); it != cfg.end(); ++it) {
    const Flag* f = lookup(command_, it.key());
    SK_CHECK(f, path, ": unknown key '", it.key(), "' for safekey ", command_);
    if (explicit_.count(f->name) && values_.count(f->name)) continue;  // command line wins
    std::string v;
    if (it->is_string()) v = it->get<std::string>();
    else if (it->is_boolean()) v = it->get<bool>() ? "true" : "false";
    else if (it->is_array()) {
      for (const auto& e : *it) v += (v.empty() ? "" : ",") + (e.is_string() ? e.get<std::string>() : e.dump());
    } else v = it->dump();
    values_[f->name] = v;
    explicit_[f->name] = true;
  }
}

Args parse_args(const std::string& command, const std::vector<std::string>& argv) {
  std::map<std::string, std::string> values;
  std::map<std::string, bool> given;
  std::vector<std::string> positional;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a == "--") {  // everything after it is positional (`safekey launch ... -- safekey train ...`)
      positional.insert(positional.end(), argv.begin() + static_cast<long>(i) + 1, argv.end());
      break;
    }
    if (a.size() < 3 || a.compare(0, 2, "--") != 0) {
      positional.push_back(a);
      continue;
    }
    std::string body = a.substr(2), value;
    bool has_value = false;
    if (auto eq = body.find('='); eq != std::string::npos) {
      value = body.substr(eq + 1);
      body = body.substr(0, eq);
      has_value = true;
    }
    const Flag* f = lookup(command, body);
    bool negated = false;
    if (!f && body.compare(0, 3, "no-") == 0) {
      f = lookup(command, body.substr(3));
      negated = f && f->is_switch;
      if (!negated) f = nullptr;
    }
    SK_CHECK(f, "safekey ", command, ": unknown flag --", body, " (see safekey ", command, " --help)");
    if (f->is_switch) {
      bool b = !negated;
      if (has_value) {
        SK_CHECK(parse_bool(value, &b), "--", body, ": expected true or false, got '", value, "'");
      } else if (i + 1 < argv.size() && parse_bool(argv[i + 1], &b)) {
        ++i;  // `--flag True` (HF Trainer style)
      }
      values[f->name] = b ? "true" : "false";
    } else {
      if (!has_value) {
        SK_CHECK(i + 1 < argv.size(), "safekey ", command, ": --", body, " needs a value");
        value = argv[++i];
      }
      if (f->repeatable && given.count(f->name)) value = values[f->name] + "\n" + value;
      values[f->name] = value;
    }
    given[f->name] = true;
  }
  return Args(command, std::move(values), std::move(given), std::move(positional));
}

std::string help_for(const Command& c) {
  std::ostringstream os;
  os << "safekey " << c.name << " — " << c.summary << "\n";
  if (!c.usage.empty()) os << "\n" << c.usage << "\n";
  os << "\nFlags:\n";
  for (const Flag* f : flags_for(c.name)) {
    std::string lhs = std::string("  --") + f->name + (f->is_switch ? "" : " V");
    os << lhs;
    if (lhs.size() < 30) os << std::string(30 - lhs.size(), ' ');
    else os << "\n" << std::string(30, ' ');
    os << f->help;
    os << " [default: " << (f->default_value[0] ? f->default_value : "none") << "]";
    if (f->env[0]) os << " [env: " << f->env << "]";
    if (f->aliases[0]) os << " [aliases: " << f->aliases << "]";
    os << "\n";
  }
  return os.str();
}

}  // namespace safekey::cli
