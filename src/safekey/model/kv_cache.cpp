#include "safekey/model/kv_cache.h"

#include <algorithm>

#include "safekey/util/error.h"

namespace safekey::model {

using torch::indexing::Slice;

void KVCache::reserve(int64_t rows, int64_t capacity, int64_t max_capacity) {
  SK_CHECK(keys_.empty() && lengths_.empty(), "KVCache::reserve: the cache is already in use");
  SK_CHECK(rows >= 1 && capacity >= 0 && max_capacity >= 0, "KVCache::reserve: bad shape rows=", rows,
           " capacity=", capacity, " max_capacity=", max_capacity);
  SK_CHECK(max_capacity == 0 || capacity <= max_capacity, "KVCache::reserve: capacity ", capacity,
           " exceeds max_capacity ", max_capacity);
  lengths_.assign(static_cast<size_t>(rows), 0);
  capacity_ = capacity;
  max_capacity_ = max_capacity;
}

int64_t KVCache::bytes() const {
  int64_t n = 0;
  for (const auto* side : {&keys_, &values_})
    for (const auto& t : *side)
      if (t.defined()) n += t.numel() * static_cast<int64_t>(t.element_size());
  return n;
}

int64_t KVCache::length() const {
  int64_t n = 0;
  for (int64_t l : lengths_) n = std::max(n, l);
  return n;
}

void KVCache::set_length(int64_t slot, int64_t n) {
  SK_CHECK(slot >= 0 && slot < rows(), "KVCache::set_length: slot ", slot, " outside [0, ", rows(), ")");
  SK_CHECK(n >= 0 && n <= capacity_, "KVCache::set_length: length ", n, " outside [0, ", capacity_, "]");
  lengths_[static_cast<size_t>(slot)] = n;
}

void KVCache::move_slot(int64_t from, int64_t to) {
  SK_CHECK(from >= 0 && from < rows() && to >= 0 && to < rows(), "KVCache::move_slot: slot outside [0, ",
           rows(), ")");
  if (from == to) return;
  const int64_t n = lengths_[static_cast<size_t>(from)];
  for (auto* side : {&keys_, &values_})
    for (auto& t : *side)
      if (t.defined() && n > 0) t[to].narrow(1, 0, n).copy_(t[from].narrow(1, 0, n));
  lengths_[static_cast<size_t>(to)] = n;
  lengths_[static_cast<size_t>(from)] = 0;
}

void KVCache::select_rows(const torch::Tensor& rows) {
  torch::Tensor idx = rows.to(torch::kCPU, torch::kLong).contiguous();
  std::vector<int64_t> kept;
  for (int64_t i = 0; i < idx.numel(); ++i) {
    const int64_t r = idx.data_ptr<int64_t>()[i];
    SK_CHECK(r >= 0 && r < this->rows(), "KVCache::select_rows: row ", r, " outside [0, ", this->rows(), ")");
    kept.push_back(lengths_[static_cast<size_t>(r)]);
  }
  for (auto* side : {&keys_, &values_})
    for (auto& t : *side)
      if (t.defined()) t = t.index_select(0, idx.to(t.device()));
  lengths_ = std::move(kept);
}

void KVCache::clear() {
  keys_.clear();
  values_.clear();
  lengths_.clear();
  capacity_ = max_capacity_ = 0;
  slots_.clear();
}

void KVCache::grow(int64_t needed) {
  SK_CHECK(max_capacity_ == 0 || needed <= max_capacity_, "KV cache: ", needed,
           " positions needed but the cache holds at most ", max_capacity_, " per sequence");
  int64_t cap = std::max<int64_t>({needed, capacity_ * 2, 16});
  if (max_capacity_ > 0) cap = std::min(cap, max_capacity_);
  for (auto* side : {&keys_, &values_})
    for (auto& t : *side) {
      if (!t.defined()) continue;
      auto shape = t.sizes().vec();
      shape[2] = cap;
      torch::Tensor bigger = torch::zeros(shape, t.options());
      bigger.narrow(2, 0, capacity_).copy_(t);
      t = bigger;
    }
  capacity_ = cap;
}

int64_t KVCache::begin(std::vector<int64_t> slots, int64_t batch, int64_t T) {
  if (slots.empty()) {
    if (lengths_.empty()) lengths_.assign(static_cast<size_t>(batch), 0);
    SK_CHECK(rows() == batch, "forward: the KV cache holds ", rows(), " rows but input_ids has ", batch);
    slots.resize(static_cast<size_t>(batch));
    for (int64_t b = 0; b < batch; ++b) slots[static_cast<size_t>(b)] = b;
  }
  SK_CHECK(static_cast<int64_t>(slots.size()) == batch, "forward: ", slots.size(), " cache slots for ", batch,
           " rows");
  int64_t max_len = 0;
  uniform_ = consecutive_ = true;
  for (size_t b = 0; b < slots.size(); ++b) {
    SK_CHECK(slots[b] >= 0 && slots[b] < rows(), "forward: cache slot ", slots[b], " outside [0, ", rows(), ")");
    const int64_t len = lengths_[static_cast<size_t>(slots[b])];
    max_len = std::max(max_len, len);
    uniform_ = uniform_ && len == lengths_[static_cast<size_t>(slots[0])];
    consecutive_ = consecutive_ && slots[b] == slots[0] + static_cast<int64_t>(b);
  }
  slots_ = std::move(slots);
  T_ = T;
  S_ = max_len + T;
  if (S_ > capacity_) grow(S_);
  slots_t_ = cols_t_ = torch::Tensor();
  return S_;
}

torch::Tensor KVCache::step_lengths(torch::Device device) const {
  std::vector<int64_t> lens;
  lens.reserve(slots_.size());
  for (int64_t s : slots_) lens.push_back(lengths_[static_cast<size_t>(s)]);
  return torch::tensor(lens, torch::kLong).to(device);
}

torch::Tensor KVCache::view_rows(const torch::Tensor& storage, int64_t S) const {
  const int64_t B = static_cast<int64_t>(slots_.size());
  if (consecutive_) return storage.narrow(0, slots_[0], B).narrow(2, 0, S);  // a view: no copy
  return storage.narrow(2, 0, S).index_select(0, slots_t_);
}

std::pair<torch::Tensor, torch::Tensor> KVCache::append(int64_t layer, const torch::Tensor& k,
                                                        const torch::Tensor& v) {
  const auto l = static_cast<size_t>(layer);
  const int64_t B = static_cast<int64_t>(slots_.size());
  SK_CHECK(k.dim() == 4 && k.size(0) == B && k.size(2) == T_, "KVCache::append: keys ", k.sizes(), " for ", B,
           " rows of ", T_, " tokens");
  if (keys_.size() <= l) {
    keys_.resize(l + 1);
    values_.resize(l + 1);
  }
  if (!keys_[l].defined()) {
    keys_[l] = torch::zeros({rows(), k.size(1), capacity_, k.size(3)}, k.options());
    values_[l] = torch::zeros({rows(), v.size(1), capacity_, v.size(3)}, v.options());
  }
  torch::Tensor& ks = keys_[l];
  torch::Tensor& vs = values_[l];
  if (!slots_t_.defined() && (!consecutive_ || !uniform_)) {
    slots_t_ = torch::tensor(slots_, torch::kLong).to(ks.device());
    std::vector<int64_t> cols;
    for (int64_t s : slots_) cols.push_back(lengths_[static_cast<size_t>(s)]);
    cols_t_ = torch::tensor(cols, torch::kLong).to(ks.device());
  }
  const int64_t first_len = lengths_[static_cast<size_t>(slots_[0])];
  if (consecutive_ && uniform_) {
    ks.narrow(0, slots_[0], B).narrow(2, first_len, T_).copy_(k);
    vs.narrow(0, slots_[0], B).narrow(2, first_len, T_).copy_(v);
  } else if (T_ == 1) {
    // One column per row, each at its own length: [slot_b, :, len_b, :] = k[b, :, 0, :].
    ks.index_put_({slots_t_, Slice(), cols_t_}, k.select(2, 0));
    vs.index_put_({slots_t_, Slice(), cols_t_}, v.select(2, 0));
  } else {
    for (int64_t b = 0; b < B; ++b) {
      const int64_t s = slots_[static_cast<size_t>(b)], len = lengths_[static_cast<size_t>(s)];
      ks[s].narrow(1, len, T_).copy_(k[b]);
      vs[s].narrow(1, len, T_).copy_(v[b]);
    }
  }
  return {view_rows(ks, S_), view_rows(vs, S_)};
}

void KVCache::end() {
  for (int64_t s : slots_) lengths_[static_cast<size_t>(s)] += T_;
  slots_.clear();
  slots_t_ = cols_t_ = torch::Tensor();
}

}  // namespace safekey::model
