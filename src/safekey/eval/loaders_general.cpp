// Loaders of the general-ability sets beyond MATH/AIME: HumanEval, GPQA-Diamond, MMLU-Pro
// (docs/evaluation.md, "Benchmarks"). GPQA and MMLU-Pro are not in the shared data: they are read
// in their published layouts from --data-dir or --bench-file.
#include <algorithm>

#include "safekey/eval/bench_loaders.h"
#include "safekey/eval/benchmarks.h"
#include "safekey/eval/choice.h"
#include "safekey/eval/csv.h"
#include "safekey/eval/humaneval.h"
#include "safekey/util/file.h"
#include "safekey/util/py_random.h"

namespace safekey::eval::detail {

namespace {
const char* const kGpqaLayout =
    "GPQA CSV with columns Question, Correct Answer, Incorrect Answer 1, Incorrect Answer 2, "
    "Incorrect Answer 3 (optional: Record ID, High-level domain)";
const char* const kMmluProLayout =
    "MMLU-Pro JSONL (or a JSON list) of objects with question, options (a list of 2-10 strings), "
    "answer (a letter) or answer_index, optional category and question_id";
const char* const kHumanEvalLayout =
    "HumanEval JSONL (optionally gzip) with task_id, prompt, entry_point, canonical_solution, test";
}  // namespace

void load_humaneval(const LoadOptions& o, Benchmark& b) {
  std::string f = need_file(o, b, kHumanEvalLayout);
  for (const auto& t : read_humaneval(f)) {
    BenchItem it =
        single_turn("humaneval/" + t.task_id, kHumanEvalInstruction + t.prompt, t.source);
    it.instruction = t.prompt;
    it.reference_answer = t.task_id;
    it.label = "code";
    b.items.push_back(std::move(it));
  }
}

void load_gpqa(const LoadOptions& o, Benchmark& b) {
  std::string f = need_file(o, b, kGpqaLayout);
  CsvTable t = read_csv_file(f);
  const char* names[] = {"Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2",
                         "Incorrect Answer 3"};
  size_t col[5];
  for (int k = 0; k < 5; ++k) {
    int c = t.column(names[k]);
    SK_CHECK(c >= 0, f, ": no column '", names[k], "'; expected layout: ", kGpqaLayout);
    col[k] = static_cast<size_t>(c);
  }
  const int id_col = t.column("Record ID"), dom_col = t.column("High-level domain");
  // simple-evals: one random.Random(0) for the file, rng.sample(range(4), 4) per question in order.
  PyRandom rng(0);
  for (size_t r = 0; r < t.rows.size(); ++r) {
    const auto& row = t.rows[r];
    std::vector<std::string> choices = {row[col[1]], row[col[2]], row[col[3]], row[col[4]]};
    std::vector<int64_t> perm = rng.sample_range(4, 4);
    std::vector<std::string> shown;
    for (int64_t p : perm) shown.push_back(choices[static_cast<size_t>(p)]);
    const size_t correct =
        static_cast<size_t>(std::find(perm.begin(), perm.end(), 0) - perm.begin());
    std::string id = id_col >= 0 && !row[id_col].empty() ? row[id_col] : std::to_string(r);
    BenchItem it = single_turn("gpqa/" + id, multiple_choice_prompt(row[col[0]], shown),
                               src(f, t.row_lines[r]));
    it.instruction = row[col[0]];
    it.reference_answer = std::string(1, static_cast<char>('A' + correct));
    it.n_options = 4;
    if (dom_col >= 0) it.category = row[dom_col];
    it.label = "choice";
    b.items.push_back(std::move(it));
  }
}

void load_mmlu_pro(const LoadOptions& o, Benchmark& b) {
  std::string f = need_file(o, b, kMmluProLayout);
  std::vector<std::pair<json, std::string>> recs;
  if (f.size() >= 5 && f.compare(f.size() - 5, 5, ".json") == 0) {
    json doc = parse_json_located(read_file(f), f);
    SK_CHECK(doc.is_array(), f, ": expected a JSON list; expected layout: ", kMmluProLayout);
    for (size_t i = 0; i < doc.size(); ++i) recs.emplace_back(doc[i], cat(f, ":[", i, "]"));
  } else {
    recs = read_jsonl(f);
  }
  for (auto& [j, w] : recs) {
    SK_CHECK(j.is_object() && j.contains("question") && j["question"].is_string(), w,
             ": missing string field 'question'; expected layout: ", kMmluProLayout);
    SK_CHECK(j.contains("options") && j["options"].is_array(), w,
             ": missing list field 'options'; expected layout: ", kMmluProLayout);
    std::vector<std::string> options;
    for (const auto& op : j["options"]) {
      SK_CHECK(op.is_string(), w, ": 'options' must hold strings");
      if (op.get<std::string>() != "N/A") options.push_back(op);  // as the official evaluation
    }
    SK_CHECK(options.size() >= 2 && options.size() <= 10, w,
             ": 'options' must hold 2 to 10 answers (has ", options.size(), ")");
    int64_t idx = -1;
    if (j.contains("answer") && j["answer"].is_string() &&
        j["answer"].get<std::string>().size() == 1)
      idx = j["answer"].get<std::string>()[0] - 'A';
    else if (j.contains("answer_index") && j["answer_index"].is_number_integer())
      idx = j["answer_index"].get<int64_t>();
    else
      fail(w, ": needs 'answer' (a letter) or 'answer_index'; expected layout: ", kMmluProLayout);
    SK_CHECK(idx >= 0 && idx < static_cast<int64_t>(options.size()), w,
             ": the answer is outside the ", options.size(), " options");
    std::string id = j.contains("question_id") ? json_scalar_text(j["question_id"])
                                               : std::to_string(b.items.size());
    BenchItem it = single_turn("mmlu_pro/" + id, multiple_choice_prompt(j["question"], options), w);
    it.instruction = j["question"];
    it.reference_answer = std::string(1, static_cast<char>('A' + idx));
    it.n_options = static_cast<int>(options.size());
    it.category = json_get_or<std::string>(j, "category", "", w);
    it.label = "choice";
    b.items.push_back(std::move(it));
  }
}

}  // namespace safekey::eval::detail
