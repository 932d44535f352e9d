// A process group on PyTorch's own distributed engine, c10d: rendezvous through a TCPStore hosted by
// rank 0, then a Gloo (CPU) or NCCL (CUDA) backend. A world of one process (no launcher) has no
// backend: every collective is the identity, so a single process runs the same code path.
//
// Every collective waits at most the group's timeout and then throws an Error that names this rank
// and the operation; a peer that dies makes the others fail (Gloo reports the closed connection),
// never hang. Gradients travel in float32/bfloat16 flat buffers (dist/sharded_adamw.h).
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "safekey/dist/env.h"

namespace safekey::dist {

// A collective started without waiting (ProcessGroup::all_gather_async). wait() completes it,
// bounded by the group's timeout, and is idempotent; the caller keeps its tensors alive until then.
class PendingWork {
 public:
  PendingWork() = default;
  explicit PendingWork(std::function<void()> wait) : wait_(std::move(wait)) {}
  bool pending() const { return static_cast<bool>(wait_); }
  void wait() {
    if (!wait_) return;
    auto w = std::move(wait_);
    wait_ = nullptr;
    w();
  }

 private:
  std::function<void()> wait_;
};

struct GroupOptions {
  std::string backend = "auto";  // auto (nccl on CUDA, gloo on the CPU) | gloo | nccl
  std::string device = "cpu";    // the device the training tensors live on
  double timeout_s = 600;        // rendezvous and every collective
};

class ProcessGroup {
 public:
  // The world of one process.
  ProcessGroup();
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  // Joins the job described by `env` (a world of one when !env.launched(): no rendezvous).
  static std::shared_ptr<ProcessGroup> create(const Env& env, const GroupOptions& options);

  int rank() const { return env_.rank; }
  int size() const { return env_.world_size; }
  const Env& env() const { return env_; }
  std::string backend() const { return backend_; }  // "none" | "gloo" | "nccl"
  double timeout_s() const { return timeout_s_; }

  // In-place collectives over every rank. Tensors must be contiguous.
  void all_reduce_sum(at::Tensor& t);
  void all_reduce_max(at::Tensor& t);
  // out[r·n : (r+1)·n] = rank r's `in` (n = in.numel(); out has size()·n elements).
  void all_gather(const at::Tensor& in, at::Tensor& out);
  // The same, started now and completed by wait() (overlaps communication with compute; the
  // backend's own threads or streams carry it). Every rank must start its collectives in the same order.
  PendingWork all_gather_async(const at::Tensor& in, at::Tensor& out);
  // out = this rank's n-element slice of the sum over ranks of `in` (size()·n elements).
  void reduce_scatter_sum(const at::Tensor& in, at::Tensor& out);
  void broadcast(at::Tensor& t, int root);
  void barrier();

  // Host-side helpers (one small collective each).
  std::vector<double> all_reduce_sum(const std::vector<double>& values);
  // The ranks whose `ok` is false, the same list on every rank.
  std::vector<int> failed_ranks(bool ok);

  // Seconds spent inside collectives since the last call (for the step's communication share).
  double take_comm_seconds();

  struct Impl;  // the c10d store and backend (process_group.cpp)

 private:
  std::unique_ptr<Impl> impl_;
  Env env_;
  std::string backend_ = "none";
  double timeout_s_ = 600;
  double comm_s_ = 0;
};

}  // namespace safekey::dist
