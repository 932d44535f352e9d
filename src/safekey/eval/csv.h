// A CSV reader following RFC 4180: fields separated by commas, records by CRLF or LF; a field in
// double quotes may hold commas, line breaks and doubled quotes (""). Also accepted: a UTF-8 byte
// order mark, a missing final line break, and blank lines between records (skipped).
// Errors name file:line:column (1-based, columns in bytes): an unterminated quoted field (at its
// opening quote), a quote inside an unquoted field, text after a closing quote, and a record whose
// field count differs from the header's.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace safekey::eval {

struct CsvTable {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::vector<size_t> row_lines;  // 1-based line where each row starts

  // Index of a header column, or -1.
  int column(const std::string& name) const;
  // Index of a header column; throws Error "<where>: no column 'name' (columns: ...)".
  size_t require_column(const std::string& name, const std::string& where) const;
};

// `where` is the file name used in messages. `sep` '\t' reads TSV (the same quoting rules, except
// that a quote inside an unquoted field is kept as text, as pandas writes TSV).
CsvTable parse_csv(std::string_view text, const std::string& where, char sep = ',');
// A .tsv path is read with sep '\t', anything else as CSV.
CsvTable read_csv_file(const std::string& path);

}  // namespace safekey::eval
