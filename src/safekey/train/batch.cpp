#include "safekey/train/batch.h"

#include <algorithm>

#include "safekey/util/error.h"

namespace safekey::train {

int64_t Batch::num_tokens() const {
  int64_t n = 0;
  for (const auto& r : rows) n += r.length;
  return n;
}

std::string Batch::describe_rows() const {
  std::string out;
  for (size_t i = 0; i < sources.size(); ++i) out += (i ? ", " : "") + sources[i];
  return out;
}

Batch collate(const std::vector<const data::TokenizedExample*>& rows, int64_t pad_id) {
  SK_CHECK(!rows.empty(), "collate: empty batch");
  const int64_t B = static_cast<int64_t>(rows.size());
  int64_t T = 0;
  for (const auto* ex : rows) T = std::max<int64_t>(T, static_cast<int64_t>(ex->input_ids.size()));
  SK_CHECK(T > 0, "collate: every row is empty (", rows[0]->source, ")");
  Batch b;
  b.input_ids = torch::full({B, T}, pad_id, torch::kInt64);
  b.labels = torch::full({B, T}, -100, torch::kInt64);
  b.k_mask = torch::zeros({B, T}, torch::kInt64);
  b.attn_mask = torch::ones({B, T}, torch::kInt64);
  b.unsafe = torch::zeros({B}, torch::kFloat32);
  auto ids = b.input_ids.accessor<int64_t, 2>();
  auto lab = b.labels.accessor<int64_t, 2>();
  auto km = b.k_mask.accessor<int64_t, 2>();
  auto am = b.attn_mask.accessor<int64_t, 2>();
  for (int64_t i = 0; i < B; ++i) {
    const auto& ex = *rows[static_cast<size_t>(i)];
    const int64_t L = static_cast<int64_t>(ex.input_ids.size());
    SK_CHECK(ex.labels.size() == ex.input_ids.size(), ex.source, ": labels and input_ids differ in length");
    SK_CHECK(0 <= ex.query_len && ex.query_len <= L && ex.u_begin <= ex.u_end && ex.u_end <= L &&
                 ex.k_begin <= ex.k_end && ex.k_end <= L,
             ex.source, ": spans out of range (query_len ", ex.query_len, ", U [", ex.u_begin, ",",
             ex.u_end, "), K [", ex.k_begin, ",", ex.k_end, "), length ", L, ")");
    RowSpans r;
    r.length = L;
    r.c_begin = ex.u_begin;
    r.c_end = ex.u_end;
    r.k_begin = ex.k_begin;
    r.k_end = ex.k_end;
    r.query_mask.assign(static_cast<size_t>(T), 1);
    for (int64_t t = 0; t < L; ++t) {
      ids[i][t] = ex.input_ids[static_cast<size_t>(t)];
      lab[i][t] = ex.labels[static_cast<size_t>(t)];
    }
    for (int64_t t = ex.k_begin; t < ex.k_end; ++t) km[i][t] = 1;
    for (int64_t t = 0; t < ex.query_len; ++t) {
      am[i][t] = 0;
      r.query_mask[static_cast<size_t>(t)] = 0;
    }
    b.unsafe[i] = static_cast<float>(ex.unsafe);
    b.rows.push_back(std::move(r));
    b.sources.push_back(ex.source.empty() ? cat("record ", ex.record_index) : ex.source);
  }
  return b;
}

namespace {

std::vector<std::vector<int64_t>> int_matrix(const json& inputs, const char* key, const std::string& where) {
  auto m = json_get<std::vector<std::vector<int64_t>>>(inputs, key, where);
  SK_CHECK(!m.empty(), where, ": field '", key, "' is empty");
  return m;
}

torch::Tensor to_tensor(const std::vector<std::vector<int64_t>>& m) {
  const int64_t B = static_cast<int64_t>(m.size()), T = static_cast<int64_t>(m[0].size());
  auto t = torch::empty({B, T}, torch::kInt64);
  auto a = t.accessor<int64_t, 2>();
  for (int64_t i = 0; i < B; ++i)
    for (int64_t j = 0; j < T; ++j) a[i][j] = m[static_cast<size_t>(i)][static_cast<size_t>(j)];
  return t;
}

}  // namespace

Batch batch_from_reference_json(const json& inputs, const std::string& where) {
  auto ids = int_matrix(inputs, "input_ids", where);
  auto labels = int_matrix(inputs, "labels", where);
  auto k_mask = int_matrix(inputs, "k_mask", where);
  auto attn = int_matrix(inputs, "attn_mask", where);
  auto c_span = int_matrix(inputs, "c_span", where);
  auto unsafe = json_get<std::vector<double>>(inputs, "unsafe", where);
  const size_t B = ids.size(), T = ids[0].size();
  SK_CHECK(T > 0, where, ": field 'input_ids' has empty rows");
  auto check_shape = [&](const std::vector<std::vector<int64_t>>& m, const char* key, size_t cols) {
    SK_CHECK(m.size() == B, where, ": field '", key, "' has ", m.size(), " rows, input_ids has ", B);
    for (size_t i = 0; i < m.size(); ++i)
      SK_CHECK(m[i].size() == cols, where, ": field '", key, "' row ", i, " has ", m[i].size(),
               " entries, expected ", cols);
  };
  check_shape(ids, "input_ids", T);
  check_shape(labels, "labels", T);
  check_shape(k_mask, "k_mask", T);
  check_shape(attn, "attn_mask", T);
  check_shape(c_span, "c_span", 2);
  SK_CHECK(unsafe.size() == B, where, ": field 'unsafe' has ", unsafe.size(), " entries, expected ", B);

  Batch b;
  b.input_ids = to_tensor(ids);
  b.labels = to_tensor(labels);
  b.k_mask = to_tensor(k_mask);
  b.attn_mask = to_tensor(attn);
  b.unsafe = torch::empty({static_cast<int64_t>(B)}, torch::kFloat32);
  for (size_t i = 0; i < B; ++i) {
    const std::string row = cat(where, ": row ", i);
    RowSpans r;
    r.length = static_cast<int64_t>(T);
    r.c_begin = c_span[i][0];
    r.c_end = c_span[i][1];
    SK_CHECK(0 <= r.c_begin && r.c_begin <= r.c_end && r.c_end <= r.length, row, ": field 'c_span' [",
             r.c_begin, ", ", r.c_end, ") is outside [0, ", T, "]");
    // K = the contiguous run of k_mask == 1.
    r.k_begin = r.k_end = 0;
    int64_t runs = 0;
    for (size_t t = 0; t < T; ++t) {
      SK_CHECK(k_mask[i][t] == 0 || k_mask[i][t] == 1, row, ": field 'k_mask' holds ", k_mask[i][t]);
      SK_CHECK(attn[i][t] == 0 || attn[i][t] == 1, row, ": field 'attn_mask' holds ", attn[i][t]);
      if (k_mask[i][t] == 1 && (t == 0 || k_mask[i][t - 1] == 0)) {
        ++runs;
        r.k_begin = static_cast<int64_t>(t);
      }
      if (k_mask[i][t] == 1) r.k_end = static_cast<int64_t>(t) + 1;
    }
    SK_CHECK(runs <= 1, row, ": field 'k_mask' has ", runs, " separate runs of 1s; K must be contiguous");
    r.query_mask.resize(T);
    for (size_t t = 0; t < T; ++t) r.query_mask[t] = static_cast<uint8_t>(attn[i][t]);
    SK_CHECK(unsafe[i] == 0 || unsafe[i] == 1, row, ": field 'unsafe' must be 0 or 1");
    b.unsafe[static_cast<int64_t>(i)] = static_cast<float>(unsafe[i]);
    b.rows.push_back(std::move(r));
    b.sources.push_back(cat(where, " row ", i));
  }
  return b;
}

}  // namespace safekey::train
