#include "safekey/train/dataset.h"

#include <algorithm>
#include <sstream>

#include "safekey/util/error.h"
#include "safekey/util/file.h"
#include "safekey/util/json.h"

namespace safekey::train {

bool is_pretokenized_file(const std::string& path) {
  std::string text = read_file(path);
  size_t i = text.find_first_not_of(" \t\r\n");
  if (i == std::string::npos || text[i] == '[') return false;
  size_t e = text.find('\n', i);
  std::string first = text.substr(i, e == std::string::npos ? std::string::npos : e - i);
  try {
    json j = json::parse(first);
    return j.is_object() && j.contains("input_ids");
  } catch (...) {
    return false;
  }
}

void validate_example(const data::TokenizedExample& ex, int64_t vocab_size) {
  const int64_t L = static_cast<int64_t>(ex.input_ids.size());
  const std::string& w = ex.source;
  SK_CHECK(L > 0, w, ": field 'input_ids' is empty");
  SK_CHECK(static_cast<int64_t>(ex.labels.size()) == L, w, ": field 'labels' has ", ex.labels.size(),
           " entries, input_ids has ", L);
  SK_CHECK(0 < ex.query_len && ex.query_len < L, w, ": field 'query_len' ", ex.query_len,
           " must be in [1, ", L, ") (the response needs at least one token)");
  SK_CHECK(ex.u_begin <= ex.u_end && ex.u_end <= L && ex.u_begin >= 0, w, ": U span [", ex.u_begin, ", ",
           ex.u_end, ") is out of range");
  SK_CHECK(ex.k_begin <= ex.k_end && ex.k_end <= L && ex.k_begin >= 0, w, ": K span [", ex.k_begin, ", ",
           ex.k_end, ") is out of range (length ", L, ")");
  SK_CHECK(ex.unsafe == 0 || ex.unsafe == 1, w, ": field 'unsafe' must be 0 or 1");
  if (vocab_size > 0)
    for (size_t i = 0; i < ex.input_ids.size(); ++i)
      SK_CHECK(ex.input_ids[i] >= 0 && ex.input_ids[i] < vocab_size, w, ": field 'input_ids'[", i, "] = ",
               ex.input_ids[i], " is outside the vocabulary [0, ", vocab_size, ")");
}

Dataset load_pretokenized(const std::string& path, int64_t vocab_size) {
  std::istringstream in(read_file(path));
  Dataset ds;
  ds.format = "pretokenized";
  std::string line;
  int64_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = cat(path, ":", lineno);
    json j = parse_json(line, where);
    data::TokenizedExample ex;
    ex.source = where;
    ex.record_index = static_cast<int64_t>(ds.examples.size());
    ex.input_ids = json_get<std::vector<int64_t>>(j, "input_ids", where);
    ex.query_len = json_get<int64_t>(j, "query_len", where);
    ex.k_begin = json_get<int64_t>(j, "k_begin", where);
    ex.k_end = json_get<int64_t>(j, "k_end", where);
    ex.unsafe = json_get<int>(j, "unsafe", where);
    ex.u_begin = json_get_or<int64_t>(j, "u_begin", ex.query_len, where);
    ex.u_end = json_get_or<int64_t>(j, "u_end", ex.k_begin, where);
    if (j.contains("labels")) {
      ex.labels = json_get<std::vector<int64_t>>(j, "labels", where);
    } else {
      ex.labels = ex.input_ids;
      for (int64_t t = 0; t < std::min<int64_t>(ex.query_len, static_cast<int64_t>(ex.labels.size())); ++t)
        ex.labels[static_cast<size_t>(t)] = -100;
    }
    validate_example(ex, vocab_size);
    ds.examples.push_back(std::move(ex));
  }
  SK_CHECK(!ds.examples.empty(), path, ": no examples");
  return ds;
}

TruncationResult truncate_example(data::TokenizedExample& ex, int64_t max_len, bool reference_compat) {
  TruncationResult r;
  const int64_t L = static_cast<int64_t>(ex.input_ids.size());
  if (L <= max_len) return r;
  r.changed = true;
  if (!reference_compat) {
    SK_CHECK(ex.query_len < max_len, ex.source, ": the query has ", ex.query_len,
             " tokens, --max-seq-len ", max_len, " leaves no room for the response (raise --max-seq-len)");
    ex.input_ids.resize(static_cast<size_t>(max_len));
    ex.labels.resize(static_cast<size_t>(max_len));
    r.k_cut = ex.k_end > max_len;
    ex.u_end = std::min(ex.u_end, max_len);
    ex.k_begin = std::min(ex.k_begin, max_len);
    ex.k_end = std::min(ex.k_end, max_len);
    return r;
  }
  // The reference: input_ids[-max_len:], labels/k_mask/attn_mask likewise; c_span unchanged.
  const int64_t shift = L - max_len;
  ex.input_ids.erase(ex.input_ids.begin(), ex.input_ids.begin() + shift);
  ex.labels.erase(ex.labels.begin(), ex.labels.begin() + shift);
  auto sh = [&](int64_t x) { return std::max<int64_t>(0, x - shift); };
  r.k_cut = ex.k_begin < shift;
  ex.query_len = sh(ex.query_len);
  ex.k_begin = sh(ex.k_begin);
  ex.k_end = sh(ex.k_end);
  ex.u_begin = std::min(ex.u_begin, max_len);  // c_span keeps its coordinates (clamped to the row)
  ex.u_end = std::min(ex.u_end, max_len);
  return r;
}

}  // namespace safekey::train
