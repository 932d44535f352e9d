// Reading record files: JSON array or JSONL, with the line each record starts on, then validation
// of every record (records.cpp) and the strict / skip-invalid policy.
#include <algorithm>

#include "safekey/data/records.h"
#include "safekey/util/file.h"

namespace safekey::data {
namespace {

bool is_json_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Byte offset -> (1-based line, 1-based column in bytes).
std::pair<int64_t, int64_t> line_col(const std::string& text, size_t byte) {
  int64_t line = 1, col = 1;
  for (size_t i = 0; i < byte && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return {line, col};
}

ordered_json parse_or_problem(const std::string& text, bool& ok, size_t& error_byte, std::string& what) {
  try {
    ok = true;
    return ordered_json::parse(text);
  } catch (const ordered_json::parse_error& e) {
    ok = false;
    error_byte = e.byte > 0 ? e.byte - 1 : 0;
    what = e.what();
    return {};
  } catch (const ordered_json::out_of_range& e) {  // a number beyond double's range (1e400)
    ok = false;
    error_byte = 0;  // nlohmann gives no position; the message quotes the number
    what = e.what();
    return {};
  }
}

// Byte offsets where the elements of a top-level array start. `text` is valid JSON.
std::vector<size_t> array_element_starts(const std::string& text, size_t open) {
  std::vector<size_t> starts;
  int depth = 0;
  bool in_string = false, expect = false;
  for (size_t i = open; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (is_json_space(c)) continue;
    if (depth == 1 && expect && c != ']') {
      starts.push_back(i);
      expect = false;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth == 1) expect = true;
    } else if (c == ']' || c == '}') {
      if (--depth == 0) break;
    } else if (c == ',' && depth == 1) {
      expect = true;
    }
  }
  return starts;
}

struct RawRecord {
  ordered_json value;
  Problem where;  // file, line, index
  bool parsed = true;
};

std::vector<RawRecord> read_array(const std::string& path, const std::string& text, size_t open) {
  bool ok;
  size_t bad;
  std::string what;
  ordered_json all = parse_or_problem(text, ok, bad, what);
  if (!ok) {
    auto [line, col] = line_col(text, bad);
    fail(path, ":", line, ":", col, ": invalid JSON (", what, ")");
  }
  SK_CHECK(all.is_array(), path, ": expected a JSON array of records");
  const std::vector<size_t> starts = array_element_starts(text, open);
  std::vector<RawRecord> out(all.size());
  size_t line = 1, pos = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    const size_t at = i < starts.size() ? starts[i] : pos;
    line += static_cast<size_t>(std::count(text.begin() + static_cast<long>(pos),
                                           text.begin() + static_cast<long>(at), '\n'));
    pos = at;
    out[i].value = std::move(all[i]);
    out[i].where = Problem{path, static_cast<int64_t>(line), 0, static_cast<int64_t>(i), "", ""};
  }
  return out;
}

std::vector<RawRecord> read_jsonl(const std::string& path, const std::string& text, size_t begin) {
  std::vector<RawRecord> out;
  int64_t line_no = 0;
  for (size_t pos = begin; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (std::all_of(line.begin(), line.end(), is_json_space)) continue;
    RawRecord r;
    r.where = Problem{path, line_no, 0, static_cast<int64_t>(out.size()), "", ""};
    bool ok;
    size_t bad;
    std::string what;
    r.value = parse_or_problem(line, ok, bad, what);
    if (!ok) {
      r.parsed = false;
      r.where.column = static_cast<int64_t>(bad) + 1;
      r.where.message = cat("invalid JSON (", what, ")");
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace

LoadResult load_records(const std::string& path, const LoadOptions& options) {
  const std::string text = read_file(path);
  size_t begin = text.compare(0, 3, "\xEF\xBB\xBF") == 0 ? 3 : 0;  // UTF-8 byte order mark
  size_t first = begin;
  while (first < text.size() && is_json_space(text[first])) ++first;
  SK_CHECK(first < text.size(), path, ": the file is empty (expected a JSON array or JSONL records)");
  std::vector<RawRecord> raw =
      text[first] == '[' ? read_array(path, text, first) : read_jsonl(path, text, begin);
  SK_CHECK(!raw.empty(), path, ": no records");

  LoadResult result;
  result.total = static_cast<int64_t>(raw.size());
  std::vector<Problem> problems;
  for (auto& r : raw) {
    const size_t before = problems.size();
    Record rec;
    if (r.parsed)
      parse_record(r.value, r.where, options, rec, problems);
    else
      problems.push_back(r.where);
    if (problems.size() == before)
      result.records.push_back(std::move(rec));
    else
      ++result.skipped;
  }
  if (!problems.empty() && !options.skip_invalid) {
    std::string msg = cat(path, ": ", result.skipped, " of ", result.total, " records are invalid (",
                          problems.size(), " problems); nothing was loaded (--skip-invalid skips them):");
    for (const auto& p : problems) msg += "\n  " + p.to_string();
    throw Error(msg);
  }
  if (options.skip_invalid && !options.invalid_list_path.empty())
    write_file_atomic(options.invalid_list_path,
                      skipped_list_json(path, problems, result.skipped).dump(2) + "\n");
  result.problems = std::move(problems);
  SK_CHECK(!result.records.empty(), path, ": all ", result.total, " records are invalid; first: ",
           result.problems.front().to_string());
  return result;
}

}  // namespace safekey::data
