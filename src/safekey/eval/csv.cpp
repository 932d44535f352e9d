#include "safekey/eval/csv.h"

#include "safekey/util/error.h"
#include "safekey/util/file.h"

namespace safekey::eval {

int CsvTable::column(const std::string& name) const {
  for (size_t i = 0; i < header.size(); ++i)
    if (header[i] == name) return static_cast<int>(i);
  return -1;
}

size_t CsvTable::require_column(const std::string& name, const std::string& where) const {
  int c = column(name);
  if (c < 0) {
    std::string cols;
    for (const auto& h : header) cols += (cols.empty() ? "" : ", ") + h;
    fail(where, ": no column '", name, "' (columns: ", cols, ")");
  }
  return static_cast<size_t>(c);
}

CsvTable parse_csv(std::string_view text, const std::string& where, char sep) {
  size_t i = 0;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") i = 3;
  size_t line = 1, line_start = i;
  auto col = [&](size_t pos) { return pos - line_start + 1; };
  CsvTable t;
  bool have_header = false;
  const size_t n = text.size();
  while (i < n) {
    // Blank line between records.
    if (text[i] == '\n' || (text[i] == '\r' && i + 1 < n && text[i + 1] == '\n')) {
      i += text[i] == '\r' ? 2 : 1;
      ++line;
      line_start = i;
      continue;
    }
    std::vector<std::string> rec;
    const size_t rec_line = line;
    bool end_of_record = false;
    while (!end_of_record) {
      std::string field;
      if (i < n && text[i] == '"') {
        const size_t open_line = line, open_col = col(i);
        ++i;
        bool closed = false;
        while (i < n) {
          char c = text[i];
          if (c == '"') {
            if (i + 1 < n && text[i + 1] == '"') {
              field += '"';
              i += 2;
              continue;
            }
            ++i;
            closed = true;
            break;
          }
          if (c == '\n') {
            ++line;
            line_start = i + 1;
          }
          field += c;
          ++i;
        }
        SK_CHECK(closed, where, ":", open_line, ":", open_col,
                 ": quoted field is never closed (missing \")");
        if (i < n && text[i] != sep && text[i] != '\n' && text[i] != '\r')
          fail(where, ":", line, ":", col(i), ": unexpected character after a closing quote",
               " (a quote inside a quoted field must be doubled: \"\")");
      } else {
        while (i < n && text[i] != sep && text[i] != '\n' && text[i] != '\r') {
          SK_CHECK(text[i] != '"' || sep == '\t', where, ":", line, ":", col(i),
                   ": quote inside an unquoted field (quote the whole field and double the quote)");
          field += text[i++];
        }
      }
      rec.push_back(std::move(field));
      if (i >= n) {
        end_of_record = true;
      } else if (text[i] == sep) {
        ++i;
      } else if (text[i] == '\r') {
        SK_CHECK(i + 1 < n && text[i + 1] == '\n', where, ":", line, ":", col(i),
                 ": bare carriage return outside a quoted field");
        i += 2;
        ++line;
        line_start = i;
        end_of_record = true;
      } else {  // '\n'
        ++i;
        ++line;
        line_start = i;
        end_of_record = true;
      }
    }
    if (!have_header) {
      t.header = std::move(rec);
      have_header = true;
    } else {
      SK_CHECK(rec.size() == t.header.size(), where, ":", rec_line, ":1: record has ", rec.size(),
               " fields, the header has ", t.header.size());
      t.rows.push_back(std::move(rec));
      t.row_lines.push_back(rec_line);
    }
  }
  SK_CHECK(have_header, where, ":1:1: empty CSV file (no header)");
  return t;
}

CsvTable read_csv_file(const std::string& path) {
  const bool tsv = path.size() >= 4 && path.compare(path.size() - 4, 4, ".tsv") == 0;
  return parse_csv(read_file(path), path, tsv ? '\t' : ',');
}

}  // namespace safekey::eval
