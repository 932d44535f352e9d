#include "safekey/dist/sharded_adamw.h"

#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>

#include "safekey/io/safetensors.h"
#include "safekey/util/error.h"

namespace safekey::dist {

struct ShardedAdamW::Bucket {
  std::vector<size_t> params;    // indices into params_
  std::vector<int64_t> offsets;  // flat offset of each parameter in the bucket
  int64_t numel = 0;
  int64_t shard = 0;             // elements per rank (stage 0: the whole bucket)
  int64_t own_begin = 0, own_end = 0;  // this rank's flat range
  at::Tensor grad_shard;         // stage 2/3: fp32 sum of the reduced gradient slices [shard]
  int unit = -1;                 // stage 3: the unit whose parameters live sharded
  at::Tensor data;               // stage 3 units: this rank's slice of the parameter values [shard]
  bool gathered = true;
  at::Tensor prefetched;  // stage 3: the unit's whole values being gathered ahead of use
  PendingWork prefetch;
};

struct ShardedAdamW::Segment {
  size_t param = 0, bucket = 0;
  int64_t begin = 0, end = 0;  // range in the parameter's flat index
  int64_t shard_offset = 0;    // position in the bucket's grad_shard
  at::Tensor exp_avg, exp_avg_sq, master;  // fp32 [end - begin]
  bool whole(int64_t numel) const { return begin == 0 && end == numel; }
};

ShardedAdamW::ShardedAdamW(std::shared_ptr<ProcessGroup> group, std::vector<OptimParam> params,
                           tensor::AdamWHyper hyper, ShardingOptions sharding)
    : group_(std::move(group)), params_(std::move(params)), hyper_(hyper), sharding_(sharding) {
  SK_CHECK(group_, "ShardedAdamW: no process group");
  SK_CHECK(sharding_.stage >= 0 && sharding_.stage <= 3, "--zero-stage must be 0, 1, 2 or 3, got ", sharding_.stage);
  SK_CHECK(sharding_.bucket_bytes > 0, "ShardedAdamW: bucket size must be > 0");
  const bool s3 = sharding_.stage == 3;
  if (s3) SK_CHECK(sharding_.unit_of_param.size() == params_.size(), "ShardedAdamW: stage 3 needs the unit of every parameter");
  const int64_t W = group_->size(), r = group_->rank();
  auto add_to = [&](Bucket& b, size_t i) {
    b.params.push_back(i);
    b.offsets.push_back(b.numel);
    b.numel += numels_[i];
  };
  size_t placeholders = 0, unit_params = 0;  // stage 3: placeholders = slices loaded afterwards
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& op = params_[i];
    SK_CHECK(op.param.defined() && op.param.is_contiguous(), "ShardedAdamW: parameter ", op.name, " is not contiguous");
    const bool placeholder = !op.shape.empty() && op.param.sizes() != at::IntArrayRef(op.shape);
    if (placeholder)
      SK_CHECK(s3 && sharding_.unit_of_param[i] >= 0 && op.param.numel() == 0, "ShardedAdamW: parameter ", op.name,
               " is a placeholder outside a stage-3 unit");
    placeholders += placeholder ? 1 : 0;
    unit_params += s3 && sharding_.unit_of_param[i] >= 0 ? 1 : 0;
    shapes_.push_back(placeholder ? op.shape : op.param.sizes().vec());
    int64_t n = 1;
    for (int64_t d : shapes_.back()) n *= d;
    numels_.push_back(n);
  }
  if (s3) {  // one bucket per unit, in unit order
    std::map<int, size_t> bucket_of_unit;
    for (size_t i = 0; i < params_.size(); ++i) {
      const int u = sharding_.unit_of_param[i];
      if (u < 0) continue;
      if (!bucket_of_unit.count(u)) {
        bucket_of_unit[u] = buckets_.size();
        buckets_.emplace_back();
        buckets_.back().unit = u;
      }
      auto& b = buckets_[bucket_of_unit[u]];
      SK_CHECK(params_[b.params.empty() ? i : b.params.front()].param.scalar_type() == params_[i].param.scalar_type(),
               "ShardedAdamW: unit ", u, " mixes dtypes");
      add_to(b, i);
    }
    int expect = 0;
    for (auto& [u, bi] : bucket_of_unit) {
      SK_CHECK(u == expect++, "ShardedAdamW: units must be numbered 0..n-1");
      unit_bucket_.push_back(bi);
    }
  }
  const size_t first_plain = buckets_.size();
  for (size_t i = 0; i < params_.size(); ++i) {
    if (s3 && sharding_.unit_of_param[i] >= 0) continue;
    const auto& p = params_[i].param;
    const bool start = buckets_.size() == first_plain || [&] {
      const auto& b = buckets_.back();
      const auto& q = params_[b.params.front()].param;
      return q.scalar_type() != p.scalar_type() || q.device() != p.device() ||
             (b.numel + p.numel()) * static_cast<int64_t>(p.element_size()) > sharding_.bucket_bytes;
    }();
    if (start) buckets_.emplace_back();
    add_to(buckets_.back(), i);
  }
  for (size_t bi = 0; bi < buckets_.size(); ++bi) {
    auto& b = buckets_[bi];
    if (sharding_.stage == 0) {
      b.shard = b.numel;
      b.own_begin = 0;
      b.own_end = b.numel;
    } else {
      b.shard = (b.numel + W - 1) / W;
      b.own_begin = std::min(b.numel, r * b.shard);
      b.own_end = std::min(b.numel, (r + 1) * b.shard);
    }
    for (size_t k = 0; k < b.params.size(); ++k) {
      const int64_t o = b.offsets[k], n = numels_[b.params[k]];
      const int64_t lo = std::max(o, b.own_begin), hi = std::min(o + n, b.own_end);
      if (lo >= hi) continue;
      Segment s;
      s.param = b.params[k];
      s.bucket = bi;
      s.begin = lo - o;
      s.end = hi - o;
      s.shard_offset = lo - b.own_begin;
      segments_.push_back(std::move(s));
    }
  }
  steps_.assign(params_.size(), 0);
  local_has_.assign(params_.size(), 0);
  global_has_.assign(params_.size(), 0);
  const bool deferred = placeholders > 0;
  SK_CHECK(!deferred || placeholders == unit_params,
           "ShardedAdamW: stage 3 with some layer parameters deferred and others whole");
  if (s3) {  // keep this rank's slice of every unit, then drop the whole parameters
    for (int u = 0; u < num_units(); ++u) {
      auto& b = buckets_[unit_bucket_[static_cast<size_t>(u)]];
      b.data = torch::zeros({b.shard}, params_[b.params.front()].param.options().requires_grad(false));
      b.gathered = !deferred;
    }
    if (!deferred) reshard_all();  // else: the slices are loaded by load_unit_slices
  }
}

void ShardedAdamW::reshard_all() {
  torch::NoGradGuard ng;
  drop_prefetches();
  for (int u = 0; u < num_units(); ++u) {
    auto& b = buckets_[unit_bucket_[static_cast<size_t>(u)]];
    SK_CHECK(b.gathered, "ShardedAdamW::reshard_all: unit ", u, " is not gathered");
    for (size_t k = 0; k < b.params.size(); ++k) {
      const auto& p = params_[b.params[k]].param;
      const int64_t o = b.offsets[k], n = numels_[b.params[k]];
      const int64_t lo = std::max(o, b.own_begin), hi = std::min(o + n, b.own_end);
      if (lo < hi) b.data.narrow(0, lo - b.own_begin, hi - lo).copy_(p.view(-1).narrow(0, lo - o, hi - lo));
    }
    release_unit(u);
  }
}

void ShardedAdamW::load_unit_slices(const std::function<void(size_t, int64_t, at::Tensor)>& read) {
  torch::NoGradGuard ng;
  drop_prefetches();
  for (int u = 0; u < num_units(); ++u) {
    auto& b = buckets_[unit_bucket_[static_cast<size_t>(u)]];
    SK_CHECK(!b.gathered, "ShardedAdamW::load_unit_slices: unit ", u, " is gathered");
    for (size_t k = 0; k < b.params.size(); ++k) {
      const int64_t o = b.offsets[k], n = numels_[b.params[k]];
      const int64_t lo = std::max(o, b.own_begin), hi = std::min(o + n, b.own_end);
      if (lo < hi) read(b.params[k], lo - o, b.data.narrow(0, lo - b.own_begin, hi - lo));
    }
  }
}

void ShardedAdamW::prefetch_unit(int unit) {
  if (unit < 0 || unit >= num_units()) return;
  auto& b = buckets_[unit_bucket_[static_cast<size_t>(unit)]];
  if (b.gathered || b.prefetched.defined()) return;
  torch::NoGradGuard ng;
  b.prefetched = torch::empty({b.shard * group_->size()}, b.data.options());
  b.prefetch = group_->all_gather_async(b.data, b.prefetched);
}

void ShardedAdamW::drop_prefetches() {
  for (int u = 0; u < num_units(); ++u) {
    auto& b = buckets_[unit_bucket_[static_cast<size_t>(u)]];
    b.prefetch.wait();  // the collective completes on every rank alike; its result is discarded
    b.prefetched = at::Tensor();
  }
}

void ShardedAdamW::gather_unit(int unit) {
  auto& b = buckets_[unit_bucket_.at(static_cast<size_t>(unit))];
  if (b.gathered) return;
  torch::NoGradGuard ng;
  at::Tensor all;
  if (b.prefetched.defined()) {
    b.prefetch.wait();
    all = std::move(b.prefetched);
    b.prefetched = at::Tensor();
  } else {
    all = torch::empty({b.shard * group_->size()}, b.data.options());
    group_->all_gather(b.data, all);
  }
  for (size_t k = 0; k < b.params.size(); ++k) {
    const size_t i = b.params[k];
    params_[i].param.set_data(all.narrow(0, b.offsets[k], numels_[i]).view(shapes_[i]));
  }
  b.gathered = true;
}

void ShardedAdamW::release_unit(int unit) {
  auto& b = buckets_[unit_bucket_.at(static_cast<size_t>(unit))];
  if (!b.gathered) return;
  torch::NoGradGuard ng;
  for (size_t i : b.params)
    params_[i].param.set_data(torch::empty(std::vector<int64_t>(shapes_[i].size(), 0), b.data.options()));
  b.gathered = false;
}

void ShardedAdamW::gather_all() {
  for (int u = 0; u < num_units(); ++u) gather_unit(u);
}

void ShardedAdamW::release_all() {
  for (int u = 0; u < num_units(); ++u) release_unit(u);
}

void ShardedAdamW::reduce_unit_gradients(int unit, const std::vector<std::pair<size_t, at::Tensor>>& grads) {
  auto& b = buckets_[unit_bucket_.at(static_cast<size_t>(unit))];
  torch::NoGradGuard ng;
  const int64_t W = group_->size();
  auto flat = torch::zeros({b.shard * W}, b.data.options());
  for (const auto& [i, g] : grads) {
    if (!g.defined()) continue;
    size_t k = 0;
    while (k < b.params.size() && b.params[k] != i) ++k;
    SK_CHECK(k < b.params.size(), "ShardedAdamW: parameter ", params_[i].name, " is not in unit ", unit);
    flat.narrow(0, b.offsets[k], numels_[i]).copy_(g.reshape({-1}));
    local_has_[i] = 1;
  }
  auto mine = torch::empty({b.shard}, flat.options());
  group_->reduce_scatter_sum(flat, mine);
  if (b.grad_shard.defined()) b.grad_shard.add_(mine.to(torch::kFloat32));
  else b.grad_shard = mine.to(torch::kFloat32);
}

ShardedAdamW::~ShardedAdamW() = default;

void ShardedAdamW::accumulate_gradients() {
  for (size_t i = 0; i < params_.size(); ++i) local_has_[i] |= params_[i].param.grad().defined() ? 1 : 0;
  if (sharding_.stage < 2) return;
  torch::NoGradGuard ng;
  const int64_t W = group_->size();
  for (auto& b : buckets_) {
    if (b.unit >= 0) continue;  // stage-3 units were reduced by their layers' backward
    const auto& first = params_[b.params.front()].param;
    auto flat = torch::zeros({b.shard * W}, first.options().requires_grad(false));
    for (size_t k = 0; k < b.params.size(); ++k) {
      auto& p = params_[b.params[k]].param;
      if (p.grad().defined()) flat.narrow(0, b.offsets[k], p.numel()).copy_(p.grad().view(-1));
    }
    auto mine = torch::empty({b.shard}, flat.options());
    group_->reduce_scatter_sum(flat, mine);
    if (b.grad_shard.defined()) b.grad_shard.add_(mine.to(torch::kFloat32));
    else b.grad_shard = mine.to(torch::kFloat32);
    for (size_t k : b.params) params_[k].param.mutable_grad() = at::Tensor();
  }
}

void ShardedAdamW::reduce_gradients() {
  torch::NoGradGuard ng;
  if (sharding_.stage < 2)  // stages 2 and 3 recorded them in accumulate_gradients()
    for (size_t i = 0; i < params_.size(); ++i) local_has_[i] |= params_[i].param.grad().defined() ? 1 : 0;
  if (group_->size() == 1) {
    global_has_ = local_has_;
  } else {
    auto flags = torch::tensor(std::vector<float>(local_has_.begin(), local_has_.end()), torch::kFloat32);
    if (!params_.empty()) flags = flags.to(params_.front().param.device());
    group_->all_reduce_max(flags);
    flags = flags.cpu();
    for (size_t i = 0; i < params_.size(); ++i) global_has_[i] = flags.data_ptr<float>()[i] > 0 ? 1 : 0;
  }
  reduced_ = true;
  if (sharding_.stage >= 2 || group_->size() == 1) return;
  for (auto& b : buckets_) {
    bool any = false;
    for (size_t k : b.params) any = any || global_has_[k];
    if (!any) continue;  // the same decision on every rank
    const auto& first = params_[b.params.front()].param;
    auto flat = torch::zeros({b.numel}, first.options().requires_grad(false));
    for (size_t k = 0; k < b.params.size(); ++k) {
      auto& p = params_[b.params[k]].param;
      if (p.grad().defined()) flat.narrow(0, b.offsets[k], p.numel()).copy_(p.grad().view(-1));
    }
    group_->all_reduce_sum(flat);
    for (size_t k = 0; k < b.params.size(); ++k) {
      auto& p = params_[b.params[k]].param;
      if (!global_has_[b.params[k]]) continue;
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
      p.grad().view(-1).copy_(flat.narrow(0, b.offsets[k], p.numel()));
    }
  }
}

double ShardedAdamW::clip_grad_norm(double max_norm) {
  if (!reduced_) reduce_gradients();
  torch::NoGradGuard ng;
  if (sharding_.stage < 2) {  // every rank holds the reduced, whole gradients
    std::vector<at::Tensor> ps;
    for (const auto& op : params_) ps.push_back(op.param);
    return tensor::clip_grad_norm(ps, max_norm);
  }
  double sq = 0;
  for (auto& b : buckets_)
    if (b.grad_shard.defined()) sq += b.grad_shard.pow(2).sum().item<double>();
  const double total = std::sqrt(group_->all_reduce_sum(std::vector<double>{sq})[0]);
  const double coef = max_norm / (total + 1e-6);
  if (max_norm > 0 && coef < 1.0)
    for (auto& b : buckets_)
      if (b.grad_shard.defined()) b.grad_shard.mul_(coef);
  return total;
}

void ShardedAdamW::step(double lr) {
  drop_prefetches();  // gathered before this update: stale afterwards
  if (!reduced_) reduce_gradients();
  torch::NoGradGuard ng;
  for (size_t i = 0; i < params_.size(); ++i)
    if (global_has_[i]) steps_[i] += 1;
  for (auto& s : segments_) {
    if (!global_has_[s.param]) continue;
    const auto& op = params_[s.param];
    const int64_t len = s.end - s.begin;
    auto& bucket = buckets_[s.bucket];
    // A stage-3 unit's values live in this rank's slice; other parameters are whole.
    auto flat = bucket.unit >= 0 ? bucket.data.narrow(0, s.shard_offset, len) : op.param.view(-1).narrow(0, s.begin, len);
    const bool mixed = op.param.scalar_type() != torch::kFloat32;
    at::Tensor g;
    if (sharding_.stage >= 2) {
      g = buckets_[s.bucket].grad_shard.narrow(0, s.shard_offset, len);
    } else {
      g = op.param.grad().view(-1).narrow(0, s.begin, len);
      if (mixed) g = g.to(torch::kFloat32);
    }
    if (!s.exp_avg.defined()) {
      s.exp_avg = torch::zeros({len}, op.param.options().dtype(torch::kFloat32).requires_grad(false));
      s.exp_avg_sq = torch::zeros_like(s.exp_avg);
      if (mixed && !s.master.defined()) s.master = flat.to(torch::kFloat32).clone();
    }
    at::Tensor w = mixed ? s.master : flat;
    tensor::adamw_update(w, g, s.exp_avg, s.exp_avg_sq, steps_[s.param], lr, op.weight_decay, hyper_);
    if (mixed) flat.copy_(w);
  }
  if (sharding_.stage == 0 || group_->size() == 1) return;
  // Every rank updated its slice of each bucket: gather the whole parameters back.
  const int64_t W = group_->size();
  for (auto& b : buckets_) {
    if (b.unit >= 0) continue;  // stage-3 units stay sharded until their next use
    bool any = false;
    for (size_t k : b.params) any = any || global_has_[k];
    if (!any) continue;
    const auto& first = params_[b.params.front()].param;
    auto mine = torch::zeros({b.shard}, first.options().requires_grad(false));
    for (size_t k = 0; k < b.params.size(); ++k) {
      const auto& p = params_[b.params[k]].param;
      const int64_t o = b.offsets[k];
      const int64_t lo = std::max(o, b.own_begin), hi = std::min(o + numels_[b.params[k]], b.own_end);
      if (lo < hi) mine.narrow(0, lo - b.own_begin, hi - lo).copy_(p.view(-1).narrow(0, lo - o, hi - lo));
    }
    auto all = torch::empty({b.shard * W}, mine.options());
    group_->all_gather(mine, all);
    for (size_t k = 0; k < b.params.size(); ++k) {
      auto& p = params_[b.params[k]].param;
      p.view(-1).copy_(all.narrow(0, b.offsets[k], p.numel()));
    }
  }
}

void ShardedAdamW::zero_grad() {
  for (auto& op : params_)
    if (op.param.grad().defined()) op.param.mutable_grad() = at::Tensor();
  for (auto& b : buckets_) b.grad_shard = at::Tensor();
  std::fill(local_has_.begin(), local_has_.end(), 0);
  reduced_ = false;
}

std::string ShardedAdamW::state_file_name() const {
  if (sharding_.stage == 0) return "optimizer.safetensors";
  char buf[96];
  std::snprintf(buf, sizeof(buf), "optimizer-rank-%05d-of-%05d.safetensors", group_->rank(), group_->size());
  return buf;
}

std::vector<std::string> ShardedAdamW::all_state_file_names() const {
  if (sharding_.stage == 0) return {"optimizer.safetensors"};
  std::vector<std::string> out;
  for (int r = 0; r < group_->size(); ++r) {
    char buf[96];
    std::snprintf(buf, sizeof(buf), "optimizer-rank-%05d-of-%05d.safetensors", r, group_->size());
    out.push_back(buf);
  }
  return out;
}

bool ShardedAdamW::writes_state() const { return sharding_.stage != 0 || group_->rank() == 0; }

int64_t ShardedAdamW::state_bytes() const {
  int64_t bytes = 0;
  for (const auto& s : segments_) {
    const bool mixed = params_[s.param].param.scalar_type() != torch::kFloat32;
    bytes += (s.end - s.begin) * 4 * (mixed ? 3 : 2);
  }
  return bytes;
}

void ShardedAdamW::save_state(const std::string& path) const {
  std::vector<at::Tensor> keep;
  std::vector<io::WriteTensor> out;
  auto add = [&](const std::string& name, at::Tensor t, std::vector<int64_t> shape) {
    t = t.detach().to(torch::kCPU).contiguous();
    keep.push_back(t);
    io::WriteTensor w;
    w.name = name;
    w.dtype = t.scalar_type() == torch::kInt64 ? io::DType::I64 : io::DType::F32;
    w.shape = std::move(shape);
    w.data = t.data_ptr();
    out.push_back(w);
  };
  for (size_t i = 0; i < params_.size(); ++i)
    add("step." + params_[i].name, torch::tensor({steps_[i]}, torch::kInt64), {1});
  for (const auto& s : segments_) {
    if (!s.exp_avg.defined()) continue;
    const auto& op = params_[s.param];
    const auto shape = s.whole(numels_[s.param]) ? shapes_[s.param] : std::vector<int64_t>{s.end - s.begin};
    add("exp_avg." + op.name, s.exp_avg, shape);
    add("exp_avg_sq." + op.name, s.exp_avg_sq, shape);
    if (s.master.defined()) add("master." + op.name, s.master, shape);
    if (!s.whole(numels_[s.param])) add("range." + op.name, torch::tensor({s.begin, s.end}, torch::kInt64), {2});
  }
  io::write_safetensors(path, out);
}

void ShardedAdamW::load_state(const std::string& path) {
  io::SafetensorsFile f(path);
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string key = "step." + params_[i].name;
    SK_CHECK(f.contains(key), path, ": no tensor '", key, "' (the checkpoint's optimizer has other parameters)");
    auto st = f.get(key);
    SK_CHECK(st.dtype() == io::DType::I64 && st.nbytes == 8, path, ": tensor '", key, "' must be one I64");
    std::memcpy(&steps_[i], st.data, 8);
  }
  for (auto& s : segments_) {
    const auto& op = params_[s.param];
    const std::string& name = op.name;
    if (!f.contains("exp_avg." + name)) {
      s.exp_avg = s.exp_avg_sq = s.master = at::Tensor();
      continue;
    }
    int64_t range[2] = {0, numels_[s.param]};
    if (f.contains("range." + name)) {
      auto rv = f.get("range." + name);
      SK_CHECK(rv.dtype() == io::DType::I64 && rv.nbytes == 16, path, ": tensor 'range.", name, "' must be two I64");
      std::memcpy(range, rv.data, 16);
    }
    SK_CHECK(range[0] == s.begin && range[1] == s.end, path, ": the optimizer state of ", name, " covers [", range[0],
             ", ", range[1], ") but rank ", group_->rank(), " of ", group_->size(), " at ZeRO stage ", sharding_.stage,
             " owns [", s.begin, ", ", s.end, "): the checkpoint was written with another world size, stage or "
             "bucket size; resume with the same ones (docs/distributed.md)");
    const std::vector<int64_t> want = s.whole(numels_[s.param]) ? shapes_[s.param] : std::vector<int64_t>{s.end - s.begin};
    auto read = [&](const std::string& key) {
      auto v = f.get(key);
      SK_CHECK(v.shape() == want, path, ": tensor '", key, "' has shape ", c10::IntArrayRef(v.shape()),
               ", expected ", c10::IntArrayRef(want));
      SK_CHECK(v.dtype() == io::DType::F32, path, ": tensor '", key, "' must be F32");
      auto t = torch::empty({s.end - s.begin}, torch::kFloat32);
      std::memcpy(t.data_ptr(), v.data, v.nbytes);
      return t.to(op.param.device());
    };
    s.exp_avg = read("exp_avg." + name);
    s.exp_avg_sq = read("exp_avg_sq." + name);
    s.master = f.contains("master." + name) ? read("master." + name) : at::Tensor();
  }
}

}  // namespace safekey::dist
