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

}  // namespace

QmmResult query_mask_loss(model::DecoderModel& model, const Batch& batch, QmmPass pass,
                          const torch::Tensor& sft_hidden, int64_t loss_chunk_tokens, bool host_values,
                          bool always_forward) {
  QmmResult out;
  const auto device = model->parameters().front().device();
  auto ids_cpu = batch.input_ids.contiguous();
  auto ids = ids_cpu.accessor<int64_t, 2>();
  std::vector<int64_t> rows;
  for (int64_t b = 0; b < batch.batch_size(); ++b) {
    if (usable_row(batch.rows[static_cast<size_t>(b)])) rows.push_back(b);
    else ++out.skipped_rows;
  }
  if (rows.empty() && always_forward && pass != QmmPass::NoMask) {
    model::ForwardInput in;
    in.input_ids = batch.input_ids.narrow(0, 0, 1).narrow(1, 0, 1).to(device);
    in.compute_logits = false;
    out.k.loss = 0.0 * model->forward(in).hidden.sum().to(torch::kFloat32);
    out.k.correct_count = torch::zeros({}, torch::TensorOptions().dtype(torch::kInt64).device(device));
    return out;
  }
  if (rows.empty()) {
    out.k.loss = torch::zeros({}, torch::TensorOptions().device(device));
    out.k.correct_count = torch::zeros({}, torch::TensorOptions().dtype(torch::kInt64).device(device));
    return out;
  }
  // Prediction positions (in the coordinates of the pass) and K targets, per used row.
  std::vector<std::vector<int64_t>> pos(rows.size()), tgt(rows.size());
  torch::Tensor hidden;  // [R, N, H]

  if (pass == QmmPass::Truncated) {
    // Keep the visible tokens before k_end, in order, with their original positions.
    std::vector<std::vector<int64_t>> keep(rows.size());
    size_t N = 0;
    for (size_t i = 0; i < rows.size(); ++i) {
      const auto& r = batch.rows[static_cast<size_t>(rows[i])];
      std::vector<int64_t> local(static_cast<size_t>(r.k_end), -1);
      for (int64_t t = 0; t < r.k_end; ++t)
        if (r.query_mask[static_cast<size_t>(t)]) {
          local[static_cast<size_t>(t)] = static_cast<int64_t>(keep[i].size());
          keep[i].push_back(t);
        }
      for (int64_t t = r.k_begin - 1; t <= r.k_end - 2; ++t) {
        pos[i].push_back(local[static_cast<size_t>(t)]);
        tgt[i].push_back(ids[rows[i]][t + 1]);
      }
      N = std::max(N, keep[i].size());
    }
    const int64_t R = static_cast<int64_t>(rows.size());
    auto sub_ids = torch::zeros({R, static_cast<int64_t>(N)}, torch::kInt64);  // [R, N]
    auto sub_pos = torch::zeros({R, static_cast<int64_t>(N)}, torch::kInt64);  // [R, N]
    auto si = sub_ids.accessor<int64_t, 2>();
    auto sp = sub_pos.accessor<int64_t, 2>();
    for (int64_t i = 0; i < R; ++i) {
      const auto& k = keep[static_cast<size_t>(i)];
      for (size_t j = 0; j < N; ++j) {
        // Right padding: causality keeps it out of every real position.
        int64_t t = j < k.size() ? k[j] : k.back() + static_cast<int64_t>(j - k.size()) + 1;
        si[i][static_cast<int64_t>(j)] = j < k.size() ? ids[rows[static_cast<size_t>(i)]][t] : 0;
        sp[i][static_cast<int64_t>(j)] = t;
      }
    }
    out.tokens_run = 0;
    for (const auto& k : keep) out.tokens_run += static_cast<int64_t>(k.size());
    model::ForwardInput in;
    in.input_ids = sub_ids.to(device);
    in.position_ids = sub_pos.to(device);
    in.compute_logits = false;
    hidden = model->forward(in).hidden;
  } else {
    auto row_index = torch::tensor(rows, torch::kInt64);
    for (size_t i = 0; i < rows.size(); ++i) {
      const auto& r = batch.rows[static_cast<size_t>(rows[i])];
      for (int64_t t = r.k_begin - 1; t <= r.k_end - 2; ++t) {
        pos[i].push_back(t);
        tgt[i].push_back(ids[rows[i]][t + 1]);
      }
    }
    if (pass == QmmPass::NoMask) {
      TORCH_CHECK(sft_hidden.defined(), "query_mask_loss: NoMask needs the SFT pass's hidden states");
      hidden = sft_hidden.index_select(0, row_index.to(sft_hidden.device()));
    } else {
      model::ForwardInput in;
      in.input_ids = batch.input_ids.index_select(0, row_index).to(device);
      in.key_mask = batch.attn_mask.index_select(0, row_index).to(device);
      in.compute_logits = false;
      hidden = model->forward(in).hidden;
      out.tokens_run = in.input_ids.numel();
    }
  }
  auto tp = pack_target_positions(pos, tgt);
  out.k = lm_head_cross_entropy(model, gather_positions(hidden, tp.positions), tp.targets, loss_chunk_tokens,
                                host_values);
  return out;
}

}  // namespace safekey::train
