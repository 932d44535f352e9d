// The key/value cache for incremental decoding: per layer one storage tensor
// [rows, kv_heads, capacity, head_dim], written in place.
//
// Each row ("slot") holds one sequence: its keys occupy columns [0, length(slot)). A forward over a
// batch names the slots of its rows (ForwardInput::cache_slots; default: rows 0..B-1); each row
// appends its T new keys at its own length and attends to columns [0, length + T) of its slot. So
// appending a token writes one column (no copy of the cache), and rows of different lengths decode
// together without padding: the decoder builds the mask from the slots' lengths.
//
// Capacity: reserve(rows, capacity, max_capacity) allocates up front (a fixed budget: the storage is
// never reallocated while the lengths stay within `capacity`); otherwise the storage is allocated on
// first use and grows by doubling (one copy per doubling: amortised O(1) per appended token) up to
// `max_capacity` (0 = unbounded), beyond which appending is an error naming both numbers.
//
// The cache does not know the model: it is shaped by the first keys written into it.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace safekey::model {

class KVCache {
 public:
  KVCache() = default;

  // Sets the shape of the storage: `rows` slots, `capacity` columns allocated on first use (0 = what
  // the first forward needs), growth up to `max_capacity` (0 = unbounded; fixed when == capacity).
  // Only on an empty cache.
  void reserve(int64_t rows, int64_t capacity, int64_t max_capacity = 0);
  int64_t rows() const { return static_cast<int64_t>(lengths_.size()); }
  int64_t capacity() const { return capacity_; }
  int64_t max_capacity() const { return max_capacity_; }
  // Bytes held by the storage (all layers, keys and values).
  int64_t bytes() const;
  // The common length when every slot has the same length (the batch-at-a-time use); the largest
  // length otherwise.
  int64_t length() const;
  int64_t length(int64_t slot) const { return lengths_.at(static_cast<size_t>(slot)); }
  // Sets a slot's length (shorter: the columns beyond it are free again, e.g. after a right-padded
  // prefill; 0: the slot is empty).
  void set_length(int64_t slot, int64_t n);
  // Copies slot `from`'s keys and values into slot `to` (its length too) and empties `from`.
  void move_slot(int64_t from, int64_t to);
  // Keeps only the slots in `rows` (in that order): rows() becomes rows.numel(). Copies the storage.
  void select_rows(const torch::Tensor& rows);
  void clear();
  // Layer l's key storage [rows, kv_heads, capacity, head_dim] (undefined before the first forward).
  const torch::Tensor& key_storage(int64_t layer) const { return keys_.at(static_cast<size_t>(layer)); }

  // ---- used by the decoder during a forward (decoder.cpp / layers.cpp) ----
  // Starts a forward of T new tokens for the slots `slots` (B of them; empty = 0..B-1 with B = batch;
  // an empty cache then takes B rows). Grows the storage when needed. Returns the number of visible
  // columns S = max over the slots of length + T.
  int64_t begin(std::vector<int64_t> slots, int64_t batch, int64_t T);
  // The lengths of this forward's slots before it, [B] int64 on `device`.
  torch::Tensor step_lengths(torch::Device device) const;
  bool step_uniform() const { return uniform_; }
  // Writes layer `layer`'s new keys/values k, v [B, kvh, T, D] into the slots and returns the
  // visible keys/values [B, kvh, S, D] (views of the storage when the slots are consecutive).
  std::pair<torch::Tensor, torch::Tensor> append(int64_t layer, const torch::Tensor& k, const torch::Tensor& v);
  // Ends the forward: each slot's length grows by T.
  void end();

 private:
  void grow(int64_t needed);
  torch::Tensor view_rows(const torch::Tensor& storage, int64_t S) const;

  std::vector<torch::Tensor> keys_, values_;  // per layer [R, kvh, C, D]
  std::vector<int64_t> lengths_;              // per slot
  int64_t capacity_ = 0, max_capacity_ = 0;
  // The forward in progress.
  std::vector<int64_t> slots_;
  bool consecutive_ = true, uniform_ = true;
  int64_t T_ = 0, S_ = 0;
  torch::Tensor slots_t_, cols_t_;  // [B] on the storage's device (lazily)
};

}  // namespace safekey::model
