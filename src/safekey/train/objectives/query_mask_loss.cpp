#include "safekey/train/objectives/query_mask_loss.h"

#include <algorithm>

namespace safekey::train {

namespace {

// Rows that have a usable K: every prediction position k_begin-1 .. k_end-2 exists and is visible.
bool usable_row(const RowSpans& r) {
  if (r.k_end <= r.k_begin || r.k_begin < 1) return false;
  for (int64_t t = r.k_begin - 1; t <= r.k_end - 2; ++t)
    if (!r.query_mask[static_cast<size_t>(t)]) return false;
  return true;
}

// Prediction positions (in the coordinates of the pass) and K targets, per used row.
struct KTargets {
  std::vector<std::vector<int64_t>> pos, tgt;
  explicit KTargets(size_t rows) : pos(rows), tgt(rows) {}
};

// No row of the batch has a usable K: a zero loss. With always_forward (distributed runs, where
// every rank must run the same collectives) a forward of one token still happens, and the zero
// depends on it.
QmmResult no_usable_rows(model::DecoderModel& model, const Batch& batch, QmmPass pass, bool always_forward,
                         QmmResult out) {
  const auto device = model->parameters().front().device();
  out.k.correct_count = torch::zeros({}, torch::TensorOptions().dtype(torch::kInt64).device(device));
  if (always_forward && pass != QmmPass::NoMask) {
    model::ForwardInput in;
    in.input_ids = batch.input_ids.narrow(0, 0, 1).narrow(1, 0, 1).to(device);
    in.compute_logits = false;
    out.k.loss = 0.0 * model->forward(in).hidden.sum().to(torch::kFloat32);
  } else {
    out.k.loss = torch::zeros({}, torch::TensorOptions().device(device));
  }
  return out;
}

// The truncated pass: each row keeps its visible tokens before k_end, in order, with their original
// positions (right-padded to the longest; causality keeps the padding out of every real position).
// Returns the hidden states [R, N, H].
torch::Tensor truncated_hidden(model::DecoderModel& model, const Batch& batch, const std::vector<int64_t>& rows,
                               KTargets& t, int64_t* tokens_run) {
  const auto ids_cpu = batch.input_ids.contiguous();
  const auto ids = ids_cpu.accessor<int64_t, 2>();
  std::vector<std::vector<int64_t>> keep(rows.size());
  size_t N = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = batch.rows[static_cast<size_t>(rows[i])];
    std::vector<int64_t> local(static_cast<size_t>(r.k_end), -1);
    for (int64_t p = 0; p < r.k_end; ++p)
      if (r.query_mask[static_cast<size_t>(p)]) {
        local[static_cast<size_t>(p)] = static_cast<int64_t>(keep[i].size());
        keep[i].push_back(p);
      }
    for (int64_t p = r.k_begin - 1; p <= r.k_end - 2; ++p) {
      t.pos[i].push_back(local[static_cast<size_t>(p)]);
      t.tgt[i].push_back(ids[rows[i]][p + 1]);
    }
    N = std::max(N, keep[i].size());
  }
  const int64_t R = static_cast<int64_t>(rows.size());
  auto sub_ids = torch::zeros({R, static_cast<int64_t>(N)}, torch::kInt64);  // [R, N]
  auto sub_pos = torch::zeros({R, static_cast<int64_t>(N)}, torch::kInt64);  // [R, N]
  auto si = sub_ids.accessor<int64_t, 2>();
  auto sp = sub_pos.accessor<int64_t, 2>();
  *tokens_run = 0;
  for (int64_t i = 0; i < R; ++i) {
    const auto& k = keep[static_cast<size_t>(i)];
    *tokens_run += static_cast<int64_t>(k.size());
    for (size_t j = 0; j < N; ++j) {
      const int64_t p = j < k.size() ? k[j] : k.back() + static_cast<int64_t>(j - k.size()) + 1;
      si[i][static_cast<int64_t>(j)] = j < k.size() ? ids[rows[static_cast<size_t>(i)]][p] : 0;
      sp[i][static_cast<int64_t>(j)] = p;
    }
  }
  const auto device = model->parameters().front().device();
  model::ForwardInput in;
  in.input_ids = sub_ids.to(device);
  in.position_ids = sub_pos.to(device);
  in.compute_logits = false;
  return model->forward(in).hidden;
}

// The full-length passes: the query masked by the key mask (Masked), or the SFT pass's own hidden
// states reused (NoMask). Returns the hidden states [R, T, H].
torch::Tensor full_length_hidden(model::DecoderModel& model, const Batch& batch, const std::vector<int64_t>& rows,
                                 QmmPass pass, const torch::Tensor& sft_hidden, KTargets& t, int64_t* tokens_run) {
  const auto ids_cpu = batch.input_ids.contiguous();
  const auto ids = ids_cpu.accessor<int64_t, 2>();
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = batch.rows[static_cast<size_t>(rows[i])];
    for (int64_t p = r.k_begin - 1; p <= r.k_end - 2; ++p) {
      t.pos[i].push_back(p);
      t.tgt[i].push_back(ids[rows[i]][p + 1]);
    }
  }
  const auto row_index = torch::tensor(rows, torch::kInt64);
  if (pass == QmmPass::NoMask) {
    TORCH_CHECK(sft_hidden.defined(), "query_mask_loss: NoMask needs the SFT pass's hidden states");
    return sft_hidden.index_select(0, row_index.to(sft_hidden.device()));
  }
  const auto device = model->parameters().front().device();
  model::ForwardInput in;
  in.input_ids = batch.input_ids.index_select(0, row_index).to(device);
  in.key_mask = batch.attn_mask.index_select(0, row_index).to(device);
  in.compute_logits = false;
  *tokens_run = in.input_ids.numel();
  return model->forward(in).hidden;
}

}  // namespace

QmmResult query_mask_loss(model::DecoderModel& model, const Batch& batch, QmmPass pass,
                          const torch::Tensor& sft_hidden, int64_t loss_chunk_tokens, bool host_values,
                          bool always_forward) {
  QmmResult out;
  std::vector<int64_t> rows;
  for (int64_t b = 0; b < batch.batch_size(); ++b) {
    if (usable_row(batch.rows[static_cast<size_t>(b)])) rows.push_back(b);
    else ++out.skipped_rows;
  }
  if (rows.empty()) return no_usable_rows(model, batch, pass, always_forward, std::move(out));
  KTargets t(rows.size());
  const torch::Tensor hidden =
      pass == QmmPass::Truncated ? truncated_hidden(model, batch, rows, t, &out.tokens_run)
                                 : full_length_hidden(model, batch, rows, pass, sft_hidden, t, &out.tokens_run);
  auto tp = pack_target_positions(t.pos, t.tgt);
  out.k = lm_head_cross_entropy(model, gather_positions(hidden, tp.positions), tp.targets, loss_chunk_tokens,
                                host_values);
  return out;
}

}  // namespace safekey::train
