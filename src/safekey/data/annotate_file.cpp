// Annotating a whole file; see annotate_file.h.
#include "safekey/data/annotate_file.h"

#include <algorithm>
#include <map>

#include "safekey/util/file.h"

namespace safekey::data {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

json distribution(std::vector<int64_t> v) {
  if (v.empty()) return json::object();
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (auto x : v) sum += static_cast<double>(x);
  auto q = [&](double p) { return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5)]; };
  return {{"min", v.front()}, {"p10", q(0.1)}, {"median", q(0.5)},
          {"mean", sum / static_cast<double>(v.size())}, {"p90", q(0.9)}, {"max", v.back()}};
}

}  // namespace

json annotate_file(const std::string& in, const std::string& out, SpanAnnotator& annotator,
                   const AnnotateFileOptions& options) {
  LoadOptions lo = options.load;
  lo.require_spans = false;
  lo.invalid_list_path.clear();
  LoadResult loaded = load_records(in, lo);

  std::vector<Record> todo;
  for (const auto& r : loaded.records)
    if (!r.has_spans || options.overwrite) todo.push_back(r);
  const std::vector<SpanAnnotation> notes = annotator.annotate_all(todo);

  json report = {{"input", in}, {"output", out}, {"method", annotator.name()},
                 {"records", loaded.total}, {"annotated", 0}, {"kept", 0}, {"skipped", loaded.skipped}};
  std::map<std::string, int64_t> rules, flags, u_sentences;
  std::vector<int64_t> u_chars, k_chars;
  int64_t flagged = 0;
  json per_record = json::array();
  std::vector<Problem> problems = loaded.problems;
  std::vector<ordered_json> written;
  size_t t = 0;
  for (const auto& r : loaded.records) {
    ordered_json o = r.raw;
    if (r.has_spans && !options.overwrite) {
      report["kept"] = report["kept"].get<int64_t>() + 1;
      written.push_back(std::move(o));
      continue;
    }
    const SpanAnnotation& a = notes[t++];
    if (!a.ok) {
      problems.push_back(Problem{in, 0, 0, r.index, "response", "cannot annotate: " + a.error});
      problems.back().line = std::stoll(r.origin.substr(r.origin.rfind(':') + 1));
      continue;
    }
    o.erase("summary_end_byte");
    o.erase("next_sentence_end_byte");
    o["summary_end_idx"] = a.summary_end_idx;
    o["next_sentence_end_idx"] = a.next_sentence_end_idx;
    o["annotation"] = {{"method", annotator.name()}, {"rule", a.rule}, {"flags", a.flags},
                       {"u_sentences", a.u_sentences}};
    // The written record must pass the training loader's checks.
    Record check;
    std::vector<Problem> bad;
    LoadOptions strict = options.load;
    strict.require_spans = true;
    parse_record(o, Problem{in, 0, 0, r.index, "", ""}, strict, check, bad);
    SK_CHECK(bad.empty(), r.origin, ": internal error: annotation gave invalid offsets: ",
             bad.empty() ? "" : bad.front().to_string());
    report["annotated"] = report["annotated"].get<int64_t>() + 1;
    ++rules[a.rule];
    for (const auto& f : a.flags) ++flags[f];
    if (!a.flags.empty()) ++flagged;
    ++u_sentences[std::to_string(a.u_sentences)];
    u_chars.push_back(a.summary_end_idx - 8);  // without the leading "<think>\n"
    k_chars.push_back(a.next_sentence_end_idx - a.summary_end_idx);
    per_record.push_back({{"index", r.index}, {"origin", r.origin}, {"id", r.id}, {"rule", a.rule},
                          {"flags", a.flags}, {"u_sentences", a.u_sentences},
                          {"thinking_sentences", a.thinking_sentences},
                          {"u_chars", u_chars.back()}, {"k_chars", k_chars.back()}});
    written.push_back(std::move(o));
  }
  const int64_t failed = static_cast<int64_t>(problems.size() - loaded.problems.size());
  if (failed > 0 && !options.load.skip_invalid) {
    std::string msg = cat(in, ": ", failed, " records cannot be annotated (--skip-invalid skips them):");
    for (size_t i = loaded.problems.size(); i < problems.size(); ++i) msg += "\n  " + problems[i].to_string();
    throw Error(msg);
  }
  report["skipped"] = loaded.skipped + failed;
  report["rules"] = rules;
  report["flags"] = flags;
  report["flagged"] = flagged;
  report["u_sentences"] = u_sentences;
  report["u_chars"] = distribution(u_chars);
  report["k_chars"] = distribution(k_chars);
  report["skipped_records"] = skipped_list_json(in, problems, report["skipped"].get<int64_t>())["records"];
  report["per_record"] = std::move(per_record);

  std::string text;
  if (ends_with(out, ".jsonl")) {
    for (const auto& o : written) text += o.dump() + "\n";
  } else {
    text = ordered_json(written).dump(2) + "\n";
  }
  write_file_atomic(out, text);
  if (!options.report_path.empty()) write_file_atomic(options.report_path, report.dump(2) + "\n");
  if (!options.load.invalid_list_path.empty() && options.load.skip_invalid)
    write_file_atomic(options.load.invalid_list_path,
                      skipped_list_json(in, problems, report["skipped"].get<int64_t>()).dump(2) + "\n");
  return report;
}

std::string annotate_summary_text(const json& r) {
  std::string s = cat("annotated ", r["annotated"].get<int64_t>(), " of ", r["records"].get<int64_t>(),
                      " records (kept ", r["kept"].get<int64_t>(), " with offsets, skipped ",
                      r["skipped"].get<int64_t>(), ") with method ", r["method"].get<std::string>(), "\n");
  s += "rules:";
  for (auto& [k, v] : r["rules"].items()) s += cat(" ", k, "=", v.get<int64_t>());
  s += cat("\nflagged: ", r["flagged"].get<int64_t>(), " (");
  bool first = true;
  for (auto& [k, v] : r["flags"].items()) {
    s += cat(first ? "" : " ", k, "=", v.get<int64_t>());
    first = false;
  }
  s += ")\nU sentences:";
  for (auto& [k, v] : r["u_sentences"].items()) s += cat(" ", k, ":", v.get<int64_t>());
  auto dist = [&](const char* key) {
    const json& d = r[key];
    if (d.empty()) return std::string("-");
    return cat("min ", d["min"].get<int64_t>(), ", median ", d["median"].get<int64_t>(), ", mean ",
               static_cast<int64_t>(d["mean"].get<double>() + 0.5), ", p90 ", d["p90"].get<int64_t>(),
               ", max ", d["max"].get<int64_t>());
  };
  s += "\nU characters (after <think>\\n): " + dist("u_chars");
  s += "\nK characters: " + dist("k_chars") + "\n";
  return s;
}

}  // namespace safekey::data
