#include "safekey/train/zero3.h"

#include <map>

#include "safekey/util/error.h"

namespace safekey::train {

std::vector<int> layer_units(const std::vector<dist::OptimParam>& params) {
  std::vector<int> out;
  const std::string prefix = "model.layers.";
  for (const auto& p : params) {
    int unit = -1;
    if (p.name.rfind(prefix, 0) == 0) unit = std::stoi(p.name.substr(prefix.size()));
    out.push_back(unit);
  }
  return out;
}

Zero3Layers::Zero3Layers(model::DecoderModel& model, dist::ShardedAdamW& optimizer) : model_(model), opt_(optimizer) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < opt_.params().size(); ++i) index[opt_.params()[i].name] = i;
  const int64_t L = model_->config().num_hidden_layers;
  layer_params_.resize(static_cast<size_t>(L));
  // hf_named_parameters() lists each layer's parameters in its registration order = parameters().
  for (const auto& [name, p] : model_->hf_named_parameters()) {
    const std::string prefix = "model.layers.";
    if (name.rfind(prefix, 0) != 0) continue;
    const size_t layer = static_cast<size_t>(std::stoi(name.substr(prefix.size())));
    auto it = index.find(name);
    SK_CHECK(it != index.end(), "ZeRO-3: parameter ", name, " is not given to the optimizer");
    layer_params_[layer].push_back(it->second);
  }
  SK_CHECK(opt_.num_units() == L, "ZeRO-3: the optimizer has ", opt_.num_units(), " units for ", L, " layers");
  model_->set_layer_param_hooks(this);
}

Zero3Layers::~Zero3Layers() { model_->set_layer_param_hooks(nullptr); }

void Zero3Layers::acquire(int64_t layer) { opt_.gather_unit(static_cast<int>(layer)); }

void Zero3Layers::release(int64_t layer) { opt_.release_unit(static_cast<int>(layer)); }

void Zero3Layers::gradients(int64_t layer, const std::vector<torch::Tensor>& grads) {
  const auto& idx = layer_params_.at(static_cast<size_t>(layer));
  SK_CHECK(grads.size() == idx.size(), "ZeRO-3: layer ", layer, " returned ", grads.size(), " gradients for ",
           idx.size(), " parameters");
  std::vector<std::pair<size_t, at::Tensor>> g;
  for (size_t k = 0; k < idx.size(); ++k) g.emplace_back(idx[k], grads[k]);
  opt_.reduce_unit_gradients(static_cast<int>(layer), g);
}

}  // namespace safekey::train
