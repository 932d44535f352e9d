// AdamW over data-parallel ranks with the ZeRO stages of DeepSpeed (Rajbhandari et al., 2020):
//   stage 0  every rank holds the whole optimizer state; gradients are all-reduced once per
//            optimizer step, in flat buckets;
//   stage 1  the state (fp32 moments, and fp32 master weights for bf16 parameters) is partitioned:
//            each rank updates only its slice, then the parameters are all-gathered;
//   stage 2  as 1, and gradients are reduce-scattered after every micro-batch into this rank's slice
//            (accumulated in fp32), so a rank keeps 1/W of them between micro-batches.
// Parameters are laid out in flat buckets of consecutive parameters (one dtype and device each, at
// most `bucket_bytes` unless a single parameter is larger); every bucket is split into W equal
// slices (the last padded), so a rank's share of state is 1/W of each bucket. The update itself is
// tensor/adamw.h, element-wise, so a slice gets exactly the numbers the whole tensor would.
//
// Gradients are SUMMED across ranks: the caller scales each micro-batch's loss by 1 / (micro-batches
// in the whole optimizer step over all ranks), which makes W ranks × a micro-batches the same step as
// one rank × W·a micro-batches. A parameter with no gradient on any rank is skipped (moments and
// step count unchanged), as torch.optim does with set_to_none gradients.
//
// Call order per optimizer step, on every rank alike (they are collectives):
//   backward, accumulate_gradients()   after each micro-batch (also on a rank that had none)
//   reduce_gradients(), clip_grad_norm(), step(lr), zero_grad()
// A world of one process is the same code with identity collectives.
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "safekey/dist/process_group.h"
#include "safekey/tensor/adamw.h"

namespace safekey::dist {

struct OptimParam {
  std::string name;  // stable name (checkpoint key)
  at::Tensor param;  // contiguous leaf parameter
  double weight_decay = 0;
  // Stage 3 only: the real shape of a deferred parameter (an empty placeholder until its unit is
  // gathered; model/layers.h ParamInit). Empty: param.sizes().
  std::vector<int64_t> shape;
};

struct ShardingOptions {
  int stage = 0;                        // ZeRO stage 0, 1, 2 or 3
  int64_t bucket_bytes = 32LL << 20;    // flat communication / partition unit
  // Stage 3: the unit (a decoder layer) of each parameter, -1 for parameters that stay whole on
  // every rank and are handled as at stage 2 (embeddings, final norm, LM head, safety head). The
  // parameters of a unit are one bucket; only this rank's slice of their values is kept.
  std::vector<int> unit_of_param;
};

class ShardedAdamW {
 public:
  ShardedAdamW(std::shared_ptr<ProcessGroup> group, std::vector<OptimParam> params, tensor::AdamWHyper hyper,
               ShardingOptions sharding = {});
  virtual ~ShardedAdamW();

  void accumulate_gradients();
  void reduce_gradients();
  // The global 2-norm of the gradients (norm of per-parameter norms, as clip_grad_norm_), and when
  // max_norm > 0 every gradient scaled by min(1, max_norm / (norm + 1e-6)). Returns the norm.
  double clip_grad_norm(double max_norm);
  void step(double lr);
  void zero_grad();

  // This rank's state: per-parameter step counts, moments and master weights of the slices it owns.
  // Stage 0 writes the whole state (the format of a one-process run); stages 1/2 add the slice
  // "range.<name>" = [begin, end) of a partly owned parameter. Loading checks names, shapes and
  // ranges: a checkpoint of another world size or stage is refused with a message.
  void save_state(const std::string& path) const;
  void load_state(const std::string& path);
  // "optimizer.safetensors" at stage 0 (written by rank 0 only: it is the same on every rank),
  // "optimizer-rank-0000R-of-0000W.safetensors" at stages 1 and 2 (written by every rank).
  std::string state_file_name() const;
  bool writes_state() const;
  std::vector<std::string> all_state_file_names() const;

  // Bytes of optimizer state this rank holds once every parameter has been updated (moments, masters).
  int64_t state_bytes() const;

  // Stage 3 (collectives: every rank calls them in the same order). gather_unit all-gathers a
  // unit's slices and makes its parameters whole; release_unit drops them (the parameters become
  // empty tensors); reduce_unit_gradients reduce-scatters the unit's gradients (param index, grad;
  // undefined = zero) into this rank's fp32 slice. gather_all / release_all do every unit (a save or a
  // load of the whole model); reshard_all takes the slices from whole parameters (after a load).
  int num_units() const { return static_cast<int>(unit_bucket_.size()); }
  void gather_unit(int unit);
  // Starts gathering a unit ahead of its use (a no-op when gathered or already started, or out of
  // range); gather_unit then only waits. The optimizer step drops prefetches (their values would be
  // stale), as does drop_prefetches().
  void prefetch_unit(int unit);
  void drop_prefetches();
  void release_unit(int unit);
  void reduce_unit_gradients(int unit, const std::vector<std::pair<size_t, at::Tensor>>& grads);
  void gather_all();
  void release_all();
  void reshard_all();
  // Stage 3: fills this rank's slice of every unit directly (a low-memory load, without whole
  // parameters): read(param index, begin, dst) must write elements [begin, begin + dst.numel()) of
  // the flattened parameter into dst. The units must be released.
  void load_unit_slices(const std::function<void(size_t, int64_t, at::Tensor)>& read);
  int stage() const { return sharding_.stage; }
  ProcessGroup& group() { return *group_; }
  const std::vector<OptimParam>& params() const { return params_; }

  struct Bucket;
  struct Segment;

 private:
  std::shared_ptr<ProcessGroup> group_;
  std::vector<OptimParam> params_;
  tensor::AdamWHyper hyper_;
  ShardingOptions sharding_;
  std::vector<Bucket> buckets_;
  std::vector<Segment> segments_;
  std::vector<int64_t> steps_;
  std::vector<std::vector<int64_t>> shapes_;  // of every parameter (stage-3 parameters may be released)
  std::vector<int64_t> numels_;
  std::vector<size_t> unit_bucket_;           // stage 3: the bucket of each unit
  std::vector<uint8_t> local_has_, global_has_;
  bool reduced_ = false;
};

}  // namespace safekey::dist
