// ZeRO-3 (--zero-stage 3): the decoder layers' parameters live sharded across ranks in the
// optimizer (dist::ShardedAdamW, one unit per layer) and are made whole only around each use
// through the model's layer hooks (model/layers.h): gathered before a layer's forward, dropped
// after, gathered again for its recompute in backward, where the layer's gradients are
// reduce-scattered into this rank's fp32 slice. The embeddings, the final norm, the LM head and
// the safety head stay whole on every rank (their gradients and optimizer state are partitioned as
// at stage 2). Every rank must run the same passes (StepOptions::uniform_passes).
#pragma once
#include <vector>

#include "safekey/dist/sharded_adamw.h"
#include "safekey/model/decoder.h"

namespace safekey::train {

// The unit of each parameter: N for "model.layers.N.*", -1 otherwise.
int layer_of(const std::string& name);
std::vector<int> layer_units(const std::vector<dist::OptimParam>& params);

// Low-memory loading. The model comes from model::load_model(dir, dtype, device, /*defer_layers=*/true):
// everything outside the decoder layers whole, the layers' parameters empty placeholders. Their real
// shapes go to the optimizer (set_deferred_shapes), which then holds one slice per layer, and
// load_layer_slices fills this rank's slices from an HF folder's files, reading only those bytes
// (directly into the training dtype, on the device). No rank ever holds the whole model.
void set_deferred_shapes(std::vector<dist::OptimParam>& params, const model::ModelConfig& cfg);
void load_layer_slices(dist::ShardedAdamW& optimizer, const std::string& dir);

// Writes the model of a ZeRO-3 run as an HF folder, one layer at a time: every rank gathers the
// layers in the order the writer reads them, and each is released once the next one is needed, so
// the host holds at most the shard being written plus one layer. Only the rank with `write` writes.
// Collective; a writer that fails still completes the gathers (no rank is left waiting), then throws.
void save_model_zero3(model::DecoderModel& model, dist::ShardedAdamW& optimizer, const std::string& dir,
                      const std::string& dtype, bool write);

class Zero3Layers : public model::LayerParamHooks {
 public:
  // Installs itself on `model`; `optimizer` must be the stage-3 optimizer over the same parameters.
  // With `prefetch`, acquiring a layer also starts gathering the layer expected next (the next one
  // up in a forward, the next one down in the backward's recompute), so its communication overlaps
  // this layer's compute; a wrong guess costs one gather and one layer of memory until dropped.
  Zero3Layers(model::DecoderModel& model, dist::ShardedAdamW& optimizer, bool prefetch = true);
  ~Zero3Layers() override;
  void acquire(int64_t layer) override;
  void release(int64_t layer) override;
  void gradients(int64_t layer, const std::vector<torch::Tensor>& grads) override;

 private:
  model::DecoderModel model_;
  dist::ShardedAdamW& opt_;
  std::vector<std::vector<size_t>> layer_params_;  // optimizer indices in the layer's parameters() order
  bool prefetch_;
  int64_t last_ = -1;  // the layer acquired before
};

}  // namespace safekey::train
