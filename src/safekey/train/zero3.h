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
std::vector<int> layer_units(const std::vector<dist::OptimParam>& params);

class Zero3Layers : public model::LayerParamHooks {
 public:
  // Installs itself on `model`; `optimizer` must be the stage-3 optimizer over the same parameters.
  Zero3Layers(model::DecoderModel& model, dist::ShardedAdamW& optimizer);
  ~Zero3Layers() override;
  void acquire(int64_t layer) override;
  void release(int64_t layer) override;
  void gradients(int64_t layer, const std::vector<torch::Tensor>& grads) override;

 private:
  model::DecoderModel model_;
  dist::ShardedAdamW& opt_;
  std::vector<std::vector<size_t>> layer_params_;  // optimizer indices in the layer's parameters() order
};

}  // namespace safekey::train
