#include "safekey/eval/benchmarks.h"

#include <cstdlib>
#include <functional>
#include <map>
#include <sstream>

#include "safekey/eval/bench_loaders.h"
#include "safekey/eval/csv.h"
#include "safekey/util/file.h"
#include "safekey/util/np_random.h"

namespace safekey::eval {

const char* const kMathInstruction =
    "\nPlease reason step by step, and put your final answer within \\boxed{}.";

const char* bench_kind_name(BenchKind k) {
  switch (k) {
    case BenchKind::kHarmful: return "harmful";
    case BenchKind::kOverRefusal: return "over_refusal";
    case BenchKind::kMath: return "math";
    case BenchKind::kAime: return "aime";
    case BenchKind::kCode: return "code";
    case BenchKind::kChoice: return "choice";
  }
  return "?";
}

bool bench_kind_is_graded(BenchKind k) {
  return k == BenchKind::kMath || k == BenchKind::kAime || k == BenchKind::kCode || k == BenchKind::kChoice;
}

BenchKind bench_kind_from_name(const std::string& s) {
  if (s == "harmful") return BenchKind::kHarmful;
  if (s == "over_refusal" || s == "over-refusal") return BenchKind::kOverRefusal;
  if (s == "math") return BenchKind::kMath;
  if (s == "aime") return BenchKind::kAime;
  if (s == "choice") return BenchKind::kChoice;
  fail("unknown benchmark kind '", s, "' (expected harmful, over_refusal, math, aime or choice)");
}

std::string default_data_dir() {
  const char* s = std::getenv("SAFEKEY_SHARED_DIR");
  if (s && *s) return path_join(s, "data");
  return "../shared/data";
}

json parse_json_located(const std::string& text, const std::string& where, size_t first_line) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    size_t byte = e.byte == 0 ? 0 : e.byte - 1;
    if (byte > text.size()) byte = text.size();
    size_t line = first_line, col = 1;
    for (size_t i = 0; i < byte; ++i) {
      if (text[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    std::string msg = e.what();
    auto p = msg.find("parse error");
    fail(where, ":", line, ":", col, ": invalid JSON: ", p == std::string::npos ? msg : msg.substr(p));
  } catch (const json::out_of_range& e) {  // a number beyond double's range (1e400): no position
    fail(where, ":", first_line, ": invalid JSON: ", e.what());
  }
}

namespace detail {

BenchItem single_turn(std::string id, std::string prompt, std::string source) {
  BenchItem it;
  it.id = std::move(id);
  it.instruction = prompt;
  it.messages.push_back({"user", std::move(prompt)});
  it.source = std::move(source);
  return it;
}

std::string need_file(const LoadOptions& o, Benchmark& b, const std::string& layout) {
  auto ov = o.files.find(b.name);
  std::string p = ov != o.files.end() ? ov->second : path_join(o.data_dir, builtin_default_file(b.name));
  SK_CHECK(path_exists(p), "benchmark '", b.name, "': file not found: ", p,
           ov != o.files.end() ? std::string(" (from --bench-file)")
                               : " (set --data-dir, SAFEKEY_SHARED_DIR or --bench-file " + b.name + "=PATH)",
           layout.empty() ? "" : "; expected layout: " + layout);
  b.files.push_back(p);
  return p;
}

std::string src(const std::string& file, size_t line) { return cat(file, ":", line); }

// One JSON object per line; the line number is the record's location.
std::vector<std::pair<json, std::string>> read_jsonl(const std::string& f) {
  std::vector<std::pair<json, std::string>> out;
  std::istringstream in(read_file(f));
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    json j = parse_json_located(line, f, n);
    SK_CHECK(j.is_object(), f, ":", n, ":1: expected a JSON object per line");
    out.emplace_back(std::move(j), src(f, n));
  }
  return out;
}

std::string json_scalar_text(const json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

}  // namespace detail

namespace {
using namespace detail;

void load_strongreject(const LoadOptions& o, Benchmark& b) {
  std::string f = need_file(o, b);
  CsvTable t = read_csv_file(f);
  size_t p = t.require_column("forbidden_prompt", f), c = t.require_column("category", f);
  for (size_t r = 0; r < t.rows.size(); ++r) {
    BenchItem it = single_turn(cat("strongreject/", r), t.rows[r][p], src(f, t.row_lines[r]));
    it.category = t.rows[r][c];
    it.label = "harmful";
    b.items.push_back(std::move(it));
  }
}

void load_jbb(const LoadOptions& o, Benchmark& b) {
  // The 100 JBB-Behaviors harmful goals, as recorded in the PAIR artifact (early-2024 version).
  std::string f = need_file(o, b);
  json doc = parse_json_located(read_file(f), f);
  SK_CHECK(doc.is_object() && doc.contains("jailbreaks") && doc["jailbreaks"].is_array(), f,
           ": expected an object with a 'jailbreaks' list");
  const json& jb = doc["jailbreaks"];
  for (size_t i = 0; i < jb.size(); ++i) {
    std::string w = cat(f, ": jailbreaks[", i, "]");
    auto goal = json_get<std::string>(jb[i], "goal", w);
    auto index = json_get<int64_t>(jb[i], "index", w);
    BenchItem it = single_turn(cat("jbb/", index), goal, cat(f, ":[", i, "]"));
    it.category = json_get_or<std::string>(jb[i], "category", "", w);
    it.label = "harmful";
    b.items.push_back(std::move(it));
  }
}

void load_xstest(const LoadOptions& o, Benchmark& b) {
  std::string f = need_file(o, b);
  CsvTable t = read_csv_file(f);
  size_t id = t.require_column("id", f), p = t.require_column("prompt", f),
         ty = t.require_column("type", f), l = t.require_column("label", f);
  for (size_t r = 0; r < t.rows.size(); ++r) {
    if (t.rows[r][l] != "safe") continue;  // over-refusal: the 250 safe prompts only
    BenchItem it = single_turn(cat("xstest/", t.rows[r][id]), t.rows[r][p], src(f, t.row_lines[r]));
    it.category = t.rows[r][ty];
    it.label = t.rows[r][l];
    b.items.push_back(std::move(it));
  }
}

void load_prefilling(const LoadOptions& o, Benchmark& b) {
  std::string f = need_file(o, b);
  CsvTable t = read_csv_file(f);
  size_t g = t.require_column("goal", f), tg = t.require_column("target", f);
  for (size_t r = 0; r < t.rows.size(); ++r) {
    BenchItem it = single_turn(cat("advbench_prefilling/", r), t.rows[r][g], src(f, t.row_lines[r]));
    it.prefill_target = t.rows[r][tg];
    it.label = "harmful";
    b.items.push_back(std::move(it));
  }
}

void load_multiturn(const LoadOptions& o, Benchmark& b) {
  std::string f = need_file(o, b);
  json doc = parse_json_located(read_file(f), f);
  SK_CHECK(doc.is_array(), f, ": expected a JSON list");
  for (size_t i = 0; i < doc.size(); ++i) {
    std::string w = cat(f, ": [", i, "]");
    BenchItem it;
    it.id = cat("multiturn/", i);
    it.instruction = json_get<std::string>(doc[i], "objective", w);
    it.source = cat(f, ":[", i, "]");
    it.label = "harmful";
    auto conv = json_get<json>(doc[i], "conversation", w);
    SK_CHECK(conv.is_array() && !conv.empty(), w, ": field 'conversation' must be a non-empty list");
    for (size_t k = 0; k < conv.size(); ++k) {
      std::string wk = cat(w, ".conversation[", k, "]");
      it.messages.push_back({json_get<std::string>(conv[k], "role", wk),
                             json_get<std::string>(conv[k], "content", wk)});
    }
    SK_CHECK(it.messages.back().role == "user", w, ": conversation must end with a user turn");
    b.items.push_back(std::move(it));
  }
}

void load_harmbench(const LoadOptions& o, Benchmark& b) {
  std::string f = need_file(o, b);
  CsvTable t = read_csv_file(f);
  size_t beh = t.require_column("Behavior", f), sem = t.require_column("SemanticCategory", f),
         ctx = t.require_column("ContextString", f), id = t.require_column("BehaviorID", f),
         fn = t.require_column("FunctionalCategory", f);
  for (size_t r = 0; r < t.rows.size(); ++r) {
    const auto& row = t.rows[r];
    // Contextual behaviors carry their context before the request, as HarmBench's own prompts do.
    std::string prompt = row[ctx].empty() ? row[beh] : row[ctx] + "\n\n---\n\n" + row[beh];
    BenchItem it = single_turn(cat("harmbench/", row[id]), prompt, src(f, t.row_lines[r]));
    it.instruction = row[beh];
    it.category = row[sem];
    it.label = "harmful/" + row[fn];
    b.items.push_back(std::move(it));
  }
}

void load_phtest(const LoadOptions& o, Benchmark& b) {
  std::string f = need_file(o, b);
  CsvTable t = read_csv_file(f);
  size_t id = t.require_column("ID", f), rq = t.require_column("Request", f),
         h = t.require_column("Harmfulness", f);
  for (size_t r = 0; r < t.rows.size(); ++r) {
    if (t.rows[r][h] != "harmless") continue;  // as the reference's parse_phtest
    BenchItem it = single_turn(cat("phtest/", t.rows[r][id]), t.rows[r][rq], src(f, t.row_lines[r]));
    it.label = t.rows[r][h];
    b.items.push_back(std::move(it));
  }
}

void load_advbench(const LoadOptions& o, Benchmark& b) {
  std::string f = need_file(o, b);
  CsvTable t = read_csv_file(f);
  size_t g = t.require_column("goal", f);
  for (size_t r = 0; r < t.rows.size(); ++r) {
    BenchItem it = single_turn(cat("advbench/", r), t.rows[r][g], src(f, t.row_lines[r]));
    it.label = "harmful";
    b.items.push_back(std::move(it));
  }
}

BenchItem math_item(const std::string& id, const std::string& problem, const std::string& answer,
                    const std::string& source) {
  BenchItem it = single_turn(id, problem + kMathInstruction, source);
  it.instruction = problem;
  it.reference_answer = answer;
  it.label = "math";
  return it;
}

void load_math500(const LoadOptions& o, Benchmark& b) {
  std::string f = need_file(o, b);
  for (auto& [j, s] : read_jsonl(f)) {
    auto uid = json_get_or<std::string>(j, "unique_id", "", s);
    BenchItem it = math_item(cat("math500/", uid.empty() ? std::to_string(b.items.size()) : uid),
                             json_get<std::string>(j, "problem", s),
                             json_get<std::string>(j, "answer", s), s);
    it.category = json_get_or<std::string>(j, "subject", "", s);
    b.items.push_back(std::move(it));
  }
}

void load_aime2024(const LoadOptions& o, Benchmark& b) {
  std::string f = need_file(o, b);
  for (auto& [j, s] : read_jsonl(f)) {
    SK_CHECK(j.contains("answer"), s, ": missing field 'answer'");
    std::string id = j.contains("id") ? json_scalar_text(j["id"]) : std::to_string(b.items.size());
    b.items.push_back(math_item(cat("aime2024/", id), json_get<std::string>(j, "problem", s),
                                json_scalar_text(j["answer"]), s));
  }
}

// ---- user files -------------------------------------------------------------------------------
BenchItem user_item(const std::function<std::string(const std::string&)>& get,
                    const std::function<json(const std::string&)>& get_json, const UserFileColumns& c,
                    const std::string& where, size_t index, const std::string& name) {
  BenchItem it;
  json msgs = c.messages.empty() ? json() : get_json(c.messages);
  if (!msgs.is_null()) {
    SK_CHECK(msgs.is_array() && !msgs.empty(), where, ": field '", c.messages,
             "' must be a non-empty list of {role, content}");
    for (size_t k = 0; k < msgs.size(); ++k) {
      std::string wk = cat(where, ": ", c.messages, "[", k, "]");
      it.messages.push_back({json_get<std::string>(msgs[k], "role", wk),
                             json_get<std::string>(msgs[k], "content", wk)});
    }
    SK_CHECK(it.messages.back().role == "user", where, ": field '", c.messages,
             "' must end with a user turn");
    it.instruction = it.messages.back().content;
  } else {
    std::string p = get(c.prompt);
    SK_CHECK(!p.empty(), where, ": missing or empty prompt column '", c.prompt,
             "' (map it with --prompt-column)");
    it.messages.push_back({"user", p});
    it.instruction = p;
  }
  if (!c.objective.empty() && !get(c.objective).empty()) it.instruction = get(c.objective);
  std::string id = c.id.empty() ? "" : get(c.id);
  it.id = cat(name, "/", id.empty() ? std::to_string(index) : id);
  if (!c.category.empty()) it.category = get(c.category);
  if (!c.label.empty()) it.label = get(c.label);
  if (!c.answer.empty()) it.reference_answer = get(c.answer);
  if (!c.target.empty()) it.prefill_target = get(c.target);
  it.source = where;
  return it;
}

void load_user_file(const std::string& f, const LoadOptions& o, Benchmark& b) {
  SK_CHECK(path_exists(f), "prompt file not found: ", f);
  b.files.push_back(f);
  b.kind = o.user_kind;
  const auto& c = o.columns;
  auto ends = [&](const char* e) {
    std::string s(e);
    return f.size() >= s.size() && f.compare(f.size() - s.size(), s.size(), s) == 0;
  };
  if (ends(".csv")) {
    CsvTable t = read_csv_file(f);
    if (c.messages.empty() || t.column(c.messages) < 0) t.require_column(c.prompt, f);
    for (size_t r = 0; r < t.rows.size(); ++r) {
      const auto& row = t.rows[r];
      auto get = [&](const std::string& col) {
        int k = t.column(col);
        return k < 0 ? std::string() : row[k];
      };
      std::string where = src(f, t.row_lines[r]);
      auto get_json = [&](const std::string& col) -> json {
        int k = t.column(col);
        if (k < 0 || row[k].empty()) return json();
        return parse_json_located(row[k], cat(where, " column '", col, "'"));
      };
      b.items.push_back(user_item(get, get_json, c, where, r, b.name));
    }
    return;
  }
  std::vector<std::pair<json, std::string>> recs;
  if (ends(".jsonl")) {
    recs = read_jsonl(f);
  } else {
    SK_CHECK(ends(".json"), f, ": unknown prompt file type (expected .csv, .json or .jsonl)");
    json doc = parse_json_located(read_file(f), f);
    if (doc.is_object() && doc.contains("data")) doc = doc["data"];
    SK_CHECK(doc.is_array(), f, ": expected a JSON list of objects (or {\"data\": [...]})");
    for (size_t i = 0; i < doc.size(); ++i) {
      SK_CHECK(doc[i].is_object(), f, ": [", i, "]: expected a JSON object");
      recs.emplace_back(doc[i], cat(f, ":[", i, "]"));
    }
  }
  for (size_t i = 0; i < recs.size(); ++i) {
    const json& j = recs[i].first;
    const std::string& where = recs[i].second;
    auto get = [&](const std::string& col) -> std::string {
      if (col.empty() || !j.contains(col) || j[col].is_null()) return "";
      return json_scalar_text(j[col]);
    };
    auto get_json = [&](const std::string& col) -> json {
      if (col.empty() || !j.contains(col)) return json();
      return j[col];
    };
    b.items.push_back(user_item(get, get_json, c, where, i, b.name));
  }
}

using Loader = void (*)(const LoadOptions&, Benchmark&);
struct Builtin {
  const char* name;
  BenchKind kind;
  Loader load;
  const char* file;    // default file under the data folder
  const char* layout;  // what the file must hold, for error messages ("" = the loader says it)
  // The reference's subset: the first `subset_size` items in Dataset.shuffle(seed=subset_seed)
  // order (-1 = the whole file).
  int64_t subset_seed = -1, subset_size = -1;
};

// The items in Hugging Face datasets' Dataset.shuffle(seed) order.
void hf_shuffle(std::vector<BenchItem>& items, int64_t seed) {
  const auto perm = NpRandom(static_cast<uint64_t>(seed)).permutation(static_cast<int64_t>(items.size()));
  std::vector<BenchItem> out;
  out.reserve(items.size());
  for (int64_t i : perm) out.push_back(std::move(items[static_cast<size_t>(i)]));
  items = std::move(out);
}
const std::vector<Builtin>& builtins() {
  static const std::vector<Builtin> b = {
      {"strongreject", BenchKind::kHarmful, load_strongreject, "strongreject/strongreject_dataset.csv",
       "CSV with columns forbidden_prompt, category"},
      {"jbb", BenchKind::kHarmful, load_jbb, "jbb_artifacts/attack-artifacts/PAIR/black_box/vicuna-13b-v1.5.json",
       "JSON object whose 'jailbreaks' list holds {index, goal, category}"},
      {"wildchat", BenchKind::kHarmful, load_wildchat, "wildchat/WildChat.csv", ""},
      {"wildjailbreak", BenchKind::kHarmful, load_wildjailbreak, "wildjailbreak/eval.tsv", "", 42, 250},
      {"advbench_prefilling", BenchKind::kHarmful, load_prefilling, "safekey/advbench_prefilling/harmful_r1_8b_gptjudge.csv",
       "CSV with columns goal, target"},
      {"multiturn", BenchKind::kHarmful, load_multiturn, "safekey/door_multiturn/combine.json",
       "JSON list of {objective, conversation: [{role, content}, ...] ending on a user turn}"},
      {"harmbench", BenchKind::kHarmful, load_harmbench, "harmbench/harmbench_behaviors_text_all.csv",
       "CSV with columns Behavior, FunctionalCategory, SemanticCategory, ContextString, BehaviorID"},
      {"advbench", BenchKind::kHarmful, load_advbench, "advbench/harmful_behaviors.csv", "CSV with a goal column"},
      {"xstest", BenchKind::kOverRefusal, load_xstest, "xstest/xstest_prompts.csv", "CSV with columns id, prompt, type, label"},
      {"phtest", BenchKind::kOverRefusal, load_phtest, "phtest/dataset_v0.1.csv", "CSV with columns ID, Request, Harmfulness"},
      {"math500", BenchKind::kMath, load_math500, "safekey/reasoning/MATH/test.jsonl",
       "JSONL of {problem, answer} (optional unique_id, subject)"},
      {"aime2024", BenchKind::kAime, load_aime2024, "safekey/reasoning/AIME/test.jsonl", "JSONL of {problem, answer} (optional id)"},
      {"gpqa", BenchKind::kChoice, load_gpqa, "gpqa/gpqa_diamond.csv", ""},
      {"mmlu_pro", BenchKind::kChoice, load_mmlu_pro, "mmlu_pro/test.jsonl", ""},
      {"humaneval", BenchKind::kCode, load_humaneval, "humaneval/HumanEval.jsonl.gz", ""},
  };
  return b;
}

}  // namespace

std::vector<std::string> builtin_benchmarks() {
  std::vector<std::string> out;
  for (const auto& b : builtins()) out.push_back(b.name);
  return out;
}

namespace {
const Builtin& find_builtin(const std::string& name) {
  for (const auto& b : builtins())
    if (name == b.name) return b;
  std::string all;
  for (const auto& n : builtin_benchmarks()) all += (all.empty() ? "" : ", ") + n;
  fail("unknown benchmark '", name, "' (built-in: ", all, ")");
}
}  // namespace

BenchKind builtin_kind(const std::string& name) { return find_builtin(name).kind; }
std::string builtin_default_file(const std::string& name) { return find_builtin(name).file; }

Benchmark load_benchmark(const std::string& name_in, const LoadOptions& opts) {
  Benchmark b;
  std::string name = name_in;
  bool is_file = false;
  if (name.rfind("file:", 0) == 0) {
    name = name.substr(5);
    is_file = true;
  }
  const Builtin* found = nullptr;
  if (!is_file)
    for (const auto& bi : builtins())
      if (name == bi.name) found = &bi;
  if (found) {
    b.name = found->name;
    b.kind = found->kind;
    try {
      found->load(opts, b);
    } catch (const Error& e) {
      // Every problem with a built-in's file also says what the file must hold.
      std::string msg = e.what();
      if (*found->layout && msg.find("expected layout") == std::string::npos)
        fail(msg, "; expected layout: ", found->layout);
      throw;
    }
  } else {
    bool looks_like_file = name.find('/') != std::string::npos || name.find('.') != std::string::npos;
    if (!is_file && !looks_like_file) {
      std::string all;
      for (const auto& n : builtin_benchmarks()) all += (all.empty() ? "" : ", ") + n;
      fail("unknown benchmark '", name, "' (built-in: ", all, "; or a .csv/.json/.jsonl file)");
    }
    // A user file: its name is the file name without folder and extension.
    std::string base = name.substr(name.find_last_of('/') + 1);
    b.name = base.substr(0, base.find('.'));
    load_user_file(name, opts, b);
  }
  if (found && opts.reference_subset && found->subset_size >= 0) {
    hf_shuffle(b.items, found->subset_seed);
    if (static_cast<int64_t>(b.items.size()) > found->subset_size) b.items.resize(static_cast<size_t>(found->subset_size));
  }
  if (opts.shuffle_seed >= 0) hf_shuffle(b.items, opts.shuffle_seed);
  if (opts.limit >= 0 && static_cast<int64_t>(b.items.size()) > opts.limit) b.items.resize(opts.limit);
  return b;
}

}  // namespace safekey::eval
