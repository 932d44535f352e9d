// Every `safekey ...` command shown in README.md and docs/*.md (fenced or indented code blocks and
// inline code spans) names a real subcommand and only flags that subcommand accepts, and every
// benchmark it names with --bench/--benches is built in (or is a file or a placeholder). Docs that
// drift from the flag table or the benchmark loaders then fail here instead of in a user's shell.
//
// The truth is the built executable: `safekey <cmd> --help` prints the subcommand's flags with
// their aliases, and the parser accepts underscores for hyphens and `--no-X` for a switch X, so the
// check does too. Upper-case words (DIR, FILE), `...` and `a|b` alternatives are the docs'
// placeholder notation: `safekey analyze attention|probe` checks both subcommands.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "safekey/eval/benchmarks.h"
#include "safekey/util/file.h"
#include "support/support.h"

using namespace safekey;

namespace {

struct Shown {        // one command as the docs show it
  std::string where;  // file:line
  std::string text;   // from "safekey" to the end of the line / code span (continuations joined)
};

struct CommandHelp {
  bool known = false;
  size_t words = 0;  // words in the subcommand's name ("tokenizer train": 2)
  std::map<std::string, std::string> flags;  // spelling (canonical) -> flag name
  std::set<std::string> switches;
};

std::string canonical(std::string s) {
  std::replace(s.begin(), s.end(), '_', '-');
  return s;
}

// `safekey <words> --help` -> the command it resolves to and its flags; cached per word list.
const CommandHelp& help_for(const std::vector<std::string>& words) {
  static std::map<std::vector<std::string>, CommandHelp> cache;
  auto it = cache.find(words);
  if (it != cache.end()) return it->second;
  CommandHelp h;
  std::vector<std::string> args = words;
  args.push_back("--help");
  test::RunResult r = test::run_safekey(args);
  std::istringstream in(r.out);
  std::string line;
  if (r.exit_code == 0 && std::getline(in, line) && line.rfind("safekey ", 0) == 0) {
    std::string name = line.substr(8, line.find(" \xE2\x80\x94 ") - 8);  // "safekey NAME — ..."
    h.words = static_cast<size_t>(std::count(name.begin(), name.end(), ' ')) + 1;
    h.known = true;  // main resolved a prefix of `words` to this command
    static const std::regex flag_re(R"(^  --([a-z0-9-]+)( V)?\s)");
    static const std::regex alias_re(R"(\[aliases: ([^\]]+)\])");
    while (std::getline(in, line)) {
      std::smatch m;
      if (!std::regex_search(line, m, flag_re)) continue;
      const std::string name = m[1];
      h.flags[canonical(name)] = name;
      if (!m[2].matched) h.switches.insert(name);
      std::smatch a;
      if (std::regex_search(line, a, alias_re)) {
        std::stringstream ss(a[1].str());
        std::string alias;
        while (std::getline(ss, alias, ',')) {
          alias.erase(0, alias.find_first_not_of(' '));
          h.flags[canonical(alias)] = name;
        }
      }
    }
  }
  return cache[words] = h;
}

// Commands shown in one markdown file.
std::vector<Shown> shown_commands(const std::string& path, const std::string& label) {
  std::vector<Shown> out;
  std::istringstream in(read_file(path));
  std::vector<std::pair<int, std::string>> code;  // (line number, text) of code lines
  std::string line, pending;
  int n = 0, pending_line = 0;
  bool fenced = false;
  static const std::regex span_re("`([^`]*safekey [^`]*)`");
  while (std::getline(in, line)) {
    ++n;
    const bool fence = line.find_first_not_of(' ') != std::string::npos &&
                       line.compare(line.find_first_not_of(' '), 3, "```") == 0;
    if (fence) {
      fenced = !fenced;
      continue;
    }
    if (fenced || line.rfind("    ", 0) == 0) {
      if (pending.empty()) pending_line = n;
      if (!line.empty() && line.back() == '\\') {  // shell continuation: join with the next line
        pending += line.substr(0, line.size() - 1) + " ";
        continue;
      }
      code.push_back({pending_line, pending + line});
      pending.clear();
      continue;
    }
    for (std::sregex_iterator s(line.begin(), line.end(), span_re), e; s != e; ++s)
      code.push_back({n, (*s)[1].str()});
  }
  // Each "safekey <word>" that starts a command: at the line start, after a shell separator or
  // `--` (safekey launch), or as the last part of a path (build/release/safekey).
  static const std::regex start_re(R"((?:^|[\s;&|($])(?:[\w./-]*/)?safekey (?=[a-z]))");
  for (const auto& [ln, text] : code) {
    for (std::sregex_iterator s(text.begin(), text.end(), start_re), e; s != e; ++s) {
      const size_t at = static_cast<size_t>(s->position() + s->length());
      out.push_back({label + ":" + std::to_string(ln), text.substr(at)});
    }
  }
  return out;
}

std::vector<std::string> words_of(const std::string& text) {
  std::vector<std::string> w;
  std::istringstream in(text);
  for (std::string x; in >> x;) w.push_back(x);
  return w;
}

bool placeholder(const std::string& v) {
  if (v.empty() || v == "..." || v.find("...") != std::string::npos) return true;
  return std::all_of(v.begin(), v.end(), [](char c) {
    return std::isupper(static_cast<unsigned char>(c)) || c == '_';
  });
}

// Checks one shown command; returns the problems found (empty when fine).
std::vector<std::string> check(const Shown& c) {
  std::vector<std::string> problems;
  std::vector<std::string> w = words_of(c.text);
  // Stop where this command ends: `--` hands the rest to another command (found separately), a
  // shell operator starts one, and `#` starts a shell comment (which may show another tool's
  // flags).
  auto end = std::find_if(w.begin(), w.end(), [](const std::string& x) {
    return x == "--" || x == "&&" || x == "|" || x == ";" || x == ">" || x[0] == '#';
  });
  w.erase(end, w.end());
  if (w.empty()) return {c.where + ": empty command"};
  // `a|b` as the second word: check each alternative.
  std::vector<std::vector<std::string>> heads;
  if (w.size() > 1 && w[1].find('|') != std::string::npos) {
    std::stringstream ss(w[1]);
    for (std::string alt; std::getline(ss, alt, '|');) heads.push_back({w[0], alt});
  } else {
    heads.push_back(w.size() > 1 && std::islower(static_cast<unsigned char>(w[1][0]))
                        ? std::vector<std::string>{w[0], w[1]}
                        : std::vector<std::string>{w[0]});
  }
  for (const auto& head : heads) {
    const CommandHelp& h = help_for(head);
    if (!h.known) {
      problems.push_back(c.where + ": unknown subcommand 'safekey " + head[0] + "' in: " + c.text);
      continue;
    }
    std::string cmd_name = head[0] + (h.words == 2 ? " " + head[1] : "");
    for (size_t i = h.words; i < w.size(); ++i) {
      // A flag may sit inside the docs' optional/alternative brackets: [--x V] (--a | --b).
      std::string tok = w[i];
      tok.erase(0, tok.find_first_not_of("[("));
      if (tok.size() < 3 || tok.compare(0, 2, "--") != 0 ||
          !std::islower(static_cast<unsigned char>(tok[2])))
        continue;
      std::string body = tok.substr(2), value;
      body = body.substr(0, body.find_first_of("])|,"));
      if (auto eq = body.find('='); eq != std::string::npos) {
        value = body.substr(eq + 1);
        body = body.substr(0, eq);
      } else if (i + 1 < w.size()) {
        value = w[i + 1];
      }
      std::string key = canonical(body);
      auto f = h.flags.find(key);
      if (f == h.flags.end() && key.rfind("no-", 0) == 0) {
        auto g = h.flags.find(key.substr(3));
        if (g != h.flags.end() && h.switches.count(g->second)) f = g;
      }
      if (f == h.flags.end()) {
        problems.push_back(c.where + ": safekey " + cmd_name + " has no flag --" + body +
                           " (in: " + c.text + ")");
        continue;
      }
      if (f->second != "bench" && f->second != "benches") continue;
      value.erase(value.find_last_not_of("])") + 1);
      std::stringstream ss(value);
      const auto known = eval::builtin_benchmarks();
      for (std::string b; std::getline(ss, b, ',');) {
        const bool file = b.find('/') != std::string::npos || b.find('.') != std::string::npos;
        if (!file && !placeholder(b) && std::find(known.begin(), known.end(), b) == known.end())
          problems.push_back(c.where + ": unknown benchmark '" + b + "' for --" + body +
                             " (in: " + c.text + ")");
      }
    }
  }
  return problems;
}

std::vector<Shown> all_shown() {
  const std::string src = SAFEKEY_SOURCE_DIR;
  std::vector<Shown> all = shown_commands(src + "/README.md", "README.md");
  std::vector<std::string> docs;
  for (const auto& e : std::filesystem::directory_iterator(src + "/docs"))
    if (e.path().extension() == ".md") docs.push_back(e.path().filename().string());
  std::sort(docs.begin(), docs.end());
  for (const auto& f : docs) {
    auto s = shown_commands(src + "/docs/" + f, "docs/" + f);
    all.insert(all.end(), s.begin(), s.end());
  }
  return all;
}

// Catches docs that show a renamed or removed subcommand or flag, or a benchmark name the loaders
// do not know (docs/generation.md once showed prefilling_8b, jbbbehaviours and door_multi).
TEST(DocCommands, EverySubcommandFlagAndBenchmarkExists) {
  std::vector<Shown> all = all_shown();
  ASSERT_GT(all.size(), 30u) << "the extraction found too few commands; is the docs folder there?";
  std::vector<std::string> problems;
  for (const auto& c : all)
    for (auto& p : check(c)) problems.push_back(std::move(p));
  std::printf("  %zu commands checked\n", all.size());
  for (const auto& p : problems) ADD_FAILURE() << p;
}

// The checker itself: it must reject what it exists to catch, or the test above proves nothing.
TEST(DocCommands, CheckerRejectsUnknownNames) {
  EXPECT_FALSE(check({"t:1", "generate --model DIR --bench prefilling_8b --out x.json"}).empty());
  EXPECT_FALSE(check({"t:2", "generate --model DIR --no-such-flag 3"}).empty());
  EXPECT_FALSE(check({"t:3", "frobnicate --model DIR"}).empty());
  EXPECT_FALSE(check({"t:4", "eval --model DIR --benches strongreject,door_multi"}).empty());
  EXPECT_TRUE(
      check({"t:5", "eval --model_path DIR --benches strongreject,jbb,x.csv --out ev/"}).empty());
  EXPECT_TRUE(
      check({"t:6", "tokenizer train --corpus FILE... --vocab-size N [--special-tokens A,B]"})
          .empty());
  EXPECT_TRUE(check({"t:7", "analyze attention|probe --model DIR"}).empty());
}

}  // namespace
