#include "safekey/eval/humaneval.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <random>
#include <regex>
#include <sstream>
#include <thread>

#include "safekey/eval/benchmarks.h"
#include "safekey/eval/results.h"
#include "safekey/util/file.h"
#include "safekey/util/gzip.h"

namespace safekey::eval {

const char* const kHumanEvalInstruction =
    "Read the following function signature and docstring, and fully implement the function "
    "described. Your response should only contain the code for this function.\n";

std::vector<HumanEvalTask> read_humaneval(const std::string& path) {
  SK_CHECK(path_exists(path), "HumanEval file not found: ", path);
  const std::string text = is_gzip_path(path) ? read_gzip_file(path) : read_file(path);
  std::vector<HumanEvalTask> tasks;
  std::istringstream in(text);
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = cat(path, ":", n);
    json j = parse_json_located(line, path, n);
    auto field = [&](const char* k) {
      SK_CHECK(j.is_object() && j.contains(k) && j[k].is_string(), where,
               ": missing string field '", k,
               "' (HumanEval layout: task_id, prompt, entry_point, canonical_solution, test)");
      return j[k].get<std::string>();
    };
    tasks.push_back({field("task_id"), field("prompt"), field("entry_point"),
                     field("canonical_solution"), field("test"), where});
  }
  SK_CHECK(!tasks.empty(), path, ": no HumanEval tasks");
  return tasks;
}

namespace {

bool defines_at_top_level(const std::string& code, const std::string& name) {
  const std::regex def("(^|\\n)(async[ \\t]+)?def[ \\t]+" + name + "[ \\t]*\\(");
  return std::regex_search(code, def);
}

struct Fence {
  std::string lang, body;
};

std::vector<Fence> fenced_blocks(const std::string& text) {
  std::vector<Fence> out;
  size_t pos = 0;
  while ((pos = text.find("```", pos)) != std::string::npos) {
    size_t eol = text.find('\n', pos + 3);
    if (eol == std::string::npos) break;
    std::string lang = text.substr(pos + 3, eol - pos - 3);
    size_t close = text.find("```", eol + 1);
    Fence f;
    f.lang = lang;
    f.body = text.substr(eol + 1, close == std::string::npos ? std::string::npos : close - eol - 1);
    out.push_back(std::move(f));
    if (close == std::string::npos) break;
    pos = close + 3;
  }
  return out;
}

std::string trim_right(std::string s) {
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\n' || s.back() == '\r' || s.back() == '\t'))
    s.pop_back();
  return s;
}

}  // namespace

std::string extract_completion(const std::string& response, const std::string& entry_point) {
  const std::string close = "</think>";
  size_t c = response.rfind(close);
  std::string answer = c == std::string::npos ? response : response.substr(c + close.size());
  auto blocks = fenced_blocks(answer);
  for (const auto& b : blocks)
    if (defines_at_top_level(b.body, entry_point)) return trim_right(b.body);
  for (const auto& b : blocks)
    if (b.lang.find("py") != std::string::npos || b.lang.find("Py") != std::string::npos)
      return trim_right(b.body);
  if (!blocks.empty()) return trim_right(blocks.front().body);
  // Plain text: drop leading blank lines, keep the indentation of the first code line.
  size_t start = answer.find_first_not_of("\r\n");
  if (start == std::string::npos) return "";
  size_t line_start = answer.rfind('\n', start);
  return trim_right(answer.substr(line_start == std::string::npos ? 0 : line_start + 1));
}

std::string humaneval_program(const HumanEvalTask& task, const std::string& completion,
                              const std::string& nonce) {
  std::string code = completion;
  std::string program;
  if (defines_at_top_level(code, task.entry_point)) {
    program = task.prompt + "\n" + code + "\n";
  } else {
    // A body: indent it when its first code line starts at column 0.
    size_t first = code.find_first_not_of("\r\n");
    if (first != std::string::npos && code[first] != ' ' && code[first] != '\t') {
      std::string ind;
      std::istringstream in(code);
      std::string line;
      while (std::getline(in, line)) ind += (line.empty() ? "" : "    ") + line + "\n";
      code = ind;
    }
    program = task.prompt + code + "\n";
  }
  program += "\n" + task.test + "\n\ncheck(" + task.entry_point + ")\n";
  program += "import sys as _safekey_sys\n_safekey_sys.stdout.write('\\n" + nonce + "\\n')\n";
  return program;
}

json CodeGrade::to_json() const {
  return {{"passed", passed},
          {"correct", passed},
          {"has_answer", status != "no_code"},
          {"status", status},
          {"detail", detail},
          {"wall_s", wall_s}};
}

namespace {
std::string new_nonce() {
  static std::mutex mu;
  static std::mt19937_64 rng(std::random_device{}());
  std::lock_guard<std::mutex> g(mu);
  char buf[64];
  std::snprintf(buf, sizeof buf, "safekey-pass-%016llx%016llx",
                static_cast<unsigned long long>(rng()), static_cast<unsigned long long>(rng()));
  return buf;
}

std::string last_line(const std::string& s) {
  std::string t = trim_right(s);
  size_t p = t.rfind('\n');
  return p == std::string::npos ? t : t.substr(p + 1);
}
}  // namespace

CodeGrade run_humaneval(const HumanEvalTask& task, const std::string& completion,
                        const SandboxOptions& sandbox) {
  CodeGrade g;
  if (completion.find_first_not_of(" \t\r\n") == std::string::npos) {
    g.status = "no_code";
    g.detail = "no code in the reply";
    return g;
  }
  const std::string nonce = new_nonce();
  SandboxResult r = run_python_sandboxed(humaneval_program(task, completion, nonce), sandbox);
  g.wall_s = r.wall_s;
  if (!r.setup_error.empty()) {
    g.status = "sandbox_error";
    g.detail = r.setup_error;
    return g;
  }
  const std::string tail = "\n" + nonce + "\n";
  const bool printed = r.out.size() >= tail.size() &&
                       r.out.compare(r.out.size() - tail.size(), tail.size(), tail) == 0;
  if (r.timed_out) {
    g.status = "timeout";
    g.detail = cat("killed after ", sandbox.timeout_s, " s");
  } else if (r.exit_code == 0 && r.signal == 0 && printed) {
    g.passed = true;
    g.status = "passed";
  } else {
    g.status = "failed";
    g.detail = r.signal ? cat("killed by signal ", r.signal)
                        : (r.exit_code == 0 ? std::string("exited before the tests finished")
                                            : last_line(r.err));
  }
  return g;
}

double pass_at_k(int64_t n, int64_t c, int64_t k) {
  SK_CHECK(k >= 1 && k <= n, "pass@", k, " needs at least ", k, " samples (have ", n, ")");
  if (n - c < k) return 1.0;
  double prod = 1.0;
  for (int64_t i = n - c + 1; i <= n; ++i)
    prod *= 1.0 - static_cast<double>(k) / static_cast<double>(i);
  return 1.0 - prod;
}

json CodeCounts::to_json() const {
  json pa = json::object();
  for (const auto& [k, v] : pass_at) pa["pass@" + std::to_string(k)] = v;
  return {{"items", items},       {"responses", responses}, {"passed", passed},
          {"timeouts", timeouts}, {"no_code", no_code},     {"sandbox_errors", sandbox_errors},
          {"pass_at_k", pa},      {"isolation", isolation}};
}

CodeCounts grade_humaneval(json& doc, const std::vector<HumanEvalTask>& tasks,
                           const CodeGradeOptions& opts, const std::string& where) {
  // A sandbox that cannot start would score every program as failed: stop before grading instead.
  SandboxResult probe = run_python_sandboxed("pass\n", opts.sandbox);
  SK_CHECK(probe.setup_error.empty() && probe.exit_code == 0 && !probe.timed_out, where,
           ": the HumanEval sandbox cannot run python: ",
           probe.setup_error.empty() ? cat("a trivial program exited ", probe.exit_code, " (", probe.err, ")")
                                     : probe.setup_error);
  std::map<std::string, const HumanEvalTask*> by_id;
  for (const auto& t : tasks) by_id[t.task_id] = &t;
  json& data = doc["data"];
  struct Job {
    size_t item, resp;
    const HumanEvalTask* task;
    std::string completion;
  };
  std::vector<Job> jobs;
  for (size_t i = 0; i < data.size(); ++i) {
    const json& it = data[i];
    std::string id =
        it.contains("task_id") && it["task_id"].is_string() ? it["task_id"].get<std::string>() : "";
    if (id.empty() && it.contains("id") && it["id"].is_string()) {
      id = it["id"].get<std::string>();
      if (id.rfind("humaneval/", 0) == 0) id = id.substr(10);
    }
    SK_CHECK(!id.empty(), where, ": data[", i, "]: no 'task_id' (or 'id') naming a HumanEval task");
    auto f = by_id.find(id);
    SK_CHECK(f != by_id.end(), where, ": data[", i, "]: unknown HumanEval task '", id,
             "' (expected HumanEval/0 .. HumanEval/", tasks.size() - 1, ")");
    SK_CHECK(it.contains("response") && it["response"].is_array(), where, ": data[", i,
             "]: field 'response' must be a list of strings");
    for (size_t r = 0; r < it["response"].size(); ++r)
      jobs.push_back(
          {i, r, f->second,
           extract_completion(it["response"][r].get<std::string>(), f->second->entry_point)});
  }
  std::vector<CodeGrade> grades(jobs.size());
  std::atomic<size_t> next{0}, done{0};
  std::mutex mu;
  std::exception_ptr fatal;
  const auto t0 = std::chrono::steady_clock::now();
  auto worker = [&]() {
    for (size_t j; (j = next++) < jobs.size();) {
      try {
        CodeGrade g = run_humaneval(*jobs[j].task, jobs[j].completion, opts.sandbox);
        grades[j] = std::move(g);
      } catch (...) {
        std::lock_guard<std::mutex> l(mu);
        if (!fatal) fatal = std::current_exception();
        next = jobs.size();
        return;
      }
      size_t d = ++done;
      if (opts.progress && (d == jobs.size() || d % std::max<size_t>(1, jobs.size() / 10) == 0)) {
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::lock_guard<std::mutex> l(mu);
        std::fprintf(stderr, "humaneval: %zu/%zu programs run (%.1f s)\n", d, jobs.size(), s);
      }
    }
  };
  int n_threads = opts.jobs > 0
                      ? opts.jobs
                      : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  n_threads = static_cast<int>(std::min<size_t>(n_threads, std::max<size_t>(1, jobs.size())));
  std::vector<std::thread> pool;
  for (int i = 0; i < n_threads; ++i) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  if (fatal) std::rethrow_exception(fatal);

  CodeCounts c;
  c.items = static_cast<int64_t>(data.size());
  for (auto& it : data) it["grade"] = json::array();
  for (size_t j = 0; j < jobs.size(); ++j) {
    const CodeGrade& g = grades[j];
    data[jobs[j].item]["grade"].push_back(g.to_json());
    ++c.responses;
    if (g.passed) ++c.passed;
    if (g.status == "timeout") ++c.timeouts;
    if (g.status == "no_code") ++c.no_code;
    if (g.status == "sandbox_error") ++c.sandbox_errors;
  }
  // pass@k over items (mean of the per-item estimates), for each k every item has samples for.
  int64_t min_n = -1;
  for (const auto& it : data) {
    int64_t n = static_cast<int64_t>(it["grade"].size());
    if (min_n < 0 || n < min_n) min_n = n;
  }
  for (int64_t k : {1, 10, 100}) {
    if (min_n < k || data.empty()) continue;
    double sum = 0;
    for (const auto& it : data) {
      int64_t n = static_cast<int64_t>(it["grade"].size()), passed = 0;
      for (const auto& g : it["grade"]) passed += g.value("passed", false) ? 1 : 0;
      sum += pass_at_k(n, passed, k);
    }
    c.pass_at[k] = 100.0 * sum / static_cast<double>(data.size());
  }
  // The isolation in force, from the probe run (every run gets the same layers).
  c.isolation = probe.isolation.describe();
  json& meta = doc["meta_info"];
  if (!meta.is_object()) meta = json::object();
  meta["humaneval"] = c.to_json();
  return c;
}

}  // namespace safekey::eval
