// WildChat (toxic subset) and WildJailbreak (eval set) loaders, judged as harmful sets
// (docs/evaluation.md, "Benchmarks"). Neither file is in the shared data: they are read in the
// layouts the reference uses from --data-dir or --bench-file.
#include "safekey/eval/bench_loaders.h"
#include "safekey/eval/csv.h"

namespace safekey::eval::detail {

namespace {
const char* const kWildChatLayout =
    "CSV with a 'prompt' column (the first user turn of a toxic conversation), optional 'category' "
    "(moderation category) and 'id'";
const char* const kWildJailbreakLayout =
    "WildJailbreak eval TSV/CSV with columns adversarial, vanilla, data_type, label "
    "(rows with data_type adversarial_harmful are used)";

size_t need_column(const CsvTable& t, const std::string& f, const char* name, const char* layout) {
  int c = t.column(name);
  if (c < 0) {
    std::string have;
    for (const auto& h : t.header) have += (have.empty() ? "" : ", ") + h;
    fail(f, ": no column '", name, "' (columns: ", have, "); expected layout: ", layout);
  }
  return static_cast<size_t>(c);
}
}  // namespace

void load_wildchat(const LoadOptions& o, Benchmark& b) {
  std::string f = need_file(o, b, kWildChatLayout);
  CsvTable t = read_csv_file(f);
  size_t p = need_column(t, f, "prompt", kWildChatLayout);
  int cat_col = t.column("category"), id_col = t.column("id");
  for (size_t r = 0; r < t.rows.size(); ++r) {
    const auto& row = t.rows[r];
    std::string id = id_col >= 0 && !row[id_col].empty() ? row[id_col] : std::to_string(r);
    BenchItem it = single_turn("wildchat/" + id, row[p], src(f, t.row_lines[r]));
    if (cat_col >= 0) it.category = row[cat_col];
    it.label = "harmful";
    b.items.push_back(std::move(it));
  }
}

void load_wildjailbreak(const LoadOptions& o, Benchmark& b) {
  std::string f = need_file(o, b, kWildJailbreakLayout);
  CsvTable t = read_csv_file(f);
  size_t adv = need_column(t, f, "adversarial", kWildJailbreakLayout);
  need_column(t, f, "vanilla", kWildJailbreakLayout);
  size_t ty = need_column(t, f, "data_type", kWildJailbreakLayout);
  for (size_t r = 0; r < t.rows.size(); ++r) {
    const auto& row = t.rows[r];
    if (row[ty] != "adversarial_harmful") continue;
    BenchItem it = single_turn(cat("wildjailbreak/", r), row[adv], src(f, t.row_lines[r]));
    it.category = row[ty];
    it.label = "harmful";
    b.items.push_back(std::move(it));
  }
}

}  // namespace safekey::eval::detail
