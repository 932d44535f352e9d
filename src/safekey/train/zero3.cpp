#include "safekey/train/zero3.h"

#include <exception>
#include <map>

#include "safekey/util/error.h"

namespace safekey::train {

int layer_of(const std::string& name) {
  const std::string prefix = "model.layers.";
  return name.rfind(prefix, 0) == 0 ? std::stoi(name.substr(prefix.size())) : -1;
}

std::vector<int> layer_units(const std::vector<dist::OptimParam>& params) {
  std::vector<int> out;
  for (const auto& p : params) out.push_back(layer_of(p.name));
  return out;
}

void set_deferred_shapes(std::vector<dist::OptimParam>& params, const model::ModelConfig& cfg) {
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& ps : cfg.parameter_shapes()) shapes[ps.name] = ps.shape;
  for (auto& p : params) {
    if (layer_of(p.name) < 0) continue;
    SK_CHECK(shapes.count(p.name), "ZeRO-3: no shape for ", p.name, " in the model config");
    p.shape = shapes[p.name];
  }
}

void load_layer_slices(dist::ShardedAdamW& optimizer, const std::string& dir) {
  const io::Checkpoint ckpt = io::Checkpoint::open(dir);
  const auto& params = optimizer.params();
  optimizer.load_unit_slices([&](size_t i, int64_t begin, at::Tensor dst) {
    const std::string& name = params[i].name;
    SK_CHECK(ckpt.contains(name), ckpt.source(), ": missing tensor '", name, "'");
    model::read_tensor_range(ckpt, name, begin, dst);
  });
}

void save_model_zero3(model::DecoderModel& model, dist::ShardedAdamW& optimizer, const std::string& dir,
                      const std::string& dtype, bool write) {
  // The layers in the order the save reads the parameters (each layer's parameters are consecutive).
  std::vector<int> sequence;
  for (const auto& [name, p] : model->hf_named_parameters()) {
    const int u = layer_of(name);
    if (u >= 0 && (sequence.empty() || sequence.back() != u)) sequence.push_back(u);
  }
  size_t next = 0;  // sequence[next] is the next layer to gather
  int current = -1;
  auto advance = [&] {
    if (current >= 0) optimizer.release_unit(current);
    current = sequence[next++];
    optimizer.gather_unit(current);
  };
  auto touch = [&](const std::string& name) {
    const int u = layer_of(name);
    if (u < 0 || u == current) return;
    SK_CHECK(next < sequence.size() && sequence[next] == u, "ZeRO-3 save: layer ", u, " read out of order");
    advance();
  };
  std::exception_ptr error;
  if (write) {
    try {
      model::save_model(model, dir, 5'000'000'000LL, dtype, touch);
    } catch (...) {
      error = std::current_exception();
    }
  }
  while (next < sequence.size()) advance();  // the other ranks, or a writer that stopped early
  if (current >= 0) optimizer.release_unit(current);
  if (error) std::rethrow_exception(error);
}

Zero3Layers::Zero3Layers(model::DecoderModel& model, dist::ShardedAdamW& optimizer, bool prefetch)
    : model_(model), opt_(optimizer), prefetch_(prefetch) {
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

void Zero3Layers::acquire(int64_t layer) {
  opt_.gather_unit(static_cast<int>(layer));
  if (prefetch_) {
    // A forward walks up from 0 and the recompute in backward walks down from the top: the top
    // layer turns a forward into the backward, layer 0 after layer 1 ends a backward.
    const int64_t L = model_->config().num_hidden_layers;
    int64_t next;
    if (layer == L - 1) next = layer - 1;
    else if (layer == 0) next = last_ == 1 ? -1 : 1;
    else next = last_ == layer + 1 ? layer - 1 : layer + 1;
    opt_.prefetch_unit(static_cast<int>(next));
  }
  last_ = layer;
}

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
