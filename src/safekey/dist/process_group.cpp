#include "safekey/dist/process_group.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/torch.h>
#include <torch/version.h>

#ifdef USE_C10D_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <cstdlib>

#include "safekey/util/error.h"

namespace safekey::dist {

// c10d's backends derive from ProcessGroup in libtorch 1.x and from Backend in 2.x; both carry the
// same collective signatures.
#if TORCH_VERSION_MAJOR >= 2
using BackendBase = c10d::Backend;
#else
using BackendBase = c10d::ProcessGroup;
#endif

struct ProcessGroup::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<BackendBase> backend;
  std::chrono::milliseconds timeout{600000};
  torch::Device device = torch::kCPU;
};

namespace {

using Clock = std::chrono::steady_clock;

// The first line of an exception's message (c10 errors carry a backtrace after it).
std::string short_message(const std::exception& e) {
  std::string m;
  if (auto* ce = dynamic_cast<const c10::Error*>(&e)) m = ce->what_without_backtrace();
  else m = e.what();
  const auto nl = m.find('\n');
  if (nl != std::string::npos) m = m.substr(0, nl);
  return m;
}

bool mentions(const std::string& s, const char* word) { return s.find(word) != std::string::npos; }

}  // namespace

ProcessGroup::ProcessGroup() : impl_(std::make_unique<Impl>()) {}
ProcessGroup::~ProcessGroup() = default;

std::shared_ptr<ProcessGroup> ProcessGroup::create(const Env& env, const GroupOptions& o) {
  SK_CHECK(o.backend == "auto" || o.backend == "gloo" || o.backend == "nccl",
           "--dist-backend must be auto, gloo or nccl, got '", o.backend, "'");
  SK_CHECK(o.timeout_s > 0, "--dist-timeout must be > 0 seconds");
  std::shared_ptr<ProcessGroup> g(new ProcessGroup());
  g->env_ = env;
  g->timeout_s_ = o.timeout_s;
  g->impl_->timeout = std::chrono::milliseconds(static_cast<int64_t>(o.timeout_s * 1000));
  g->impl_->device = torch::Device(o.device);
  if (!env.launched()) return g;  // a world of one: no backend, collectives are the identity

  const bool cuda = g->impl_->device.is_cuda();
  const std::string backend = o.backend == "auto" ? (cuda ? "nccl" : "gloo") : o.backend;
  SK_CHECK(backend != "nccl" || cuda, "rank ", env.rank, ": --dist-backend nccl needs a CUDA --device (got ",
           o.device, ")");
  const std::string where = cat(env.master_addr, ":", env.master_port);

  // Rendezvous: rank 0 hosts the store and waits for every rank; the others connect with retries.
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(env.master_port);
    so.isServer = env.rank == 0 && !env.agent_store;
    so.numWorkers = static_cast<size_t>(env.world_size);
    so.waitWorkers = true;
    so.timeout = g->impl_->timeout;
    auto tcp = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
    // Our keys apart from a launcher agent's (torchrun's agent shares the store).
    g->impl_->store = c10::make_intrusive<c10d::PrefixStore>("safekey/", tcp);
  } catch (const std::exception& e) {
    const std::string m = short_message(e);
    if (env.rank == 0 && (mentions(m, "listen") || mentions(m, "in use") || mentions(m, "bind")))
      fail("rank 0: cannot host the rendezvous on ", where, " (is MASTER_PORT=", env.master_port,
           " in use by another job?): ", m);
    fail("rank ", env.rank, ": the rendezvous at ", where, " did not complete (", env.world_size, " ranks, --dist-timeout ",
         o.timeout_s, " s): ", env.rank == 0 ? "not every rank arrived" : "rank 0 is not reachable there or not every rank arrived",
         " (", m, ")");
  }

  try {
    if (backend == "gloo") {
#ifdef USE_C10D_GLOO
      auto opts = c10d::ProcessGroupGloo::Options::create(g->impl_->timeout);
      const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
      if (ifname && *ifname) opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      else if (env.master_addr.rfind("127.", 0) == 0 || env.master_addr == "localhost")
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      else opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      opts->threads = 2;
      g->impl_->backend = c10::make_intrusive<c10d::ProcessGroupGloo>(g->impl_->store, env.rank, env.world_size, opts);
#else
      fail("this build has no Gloo backend (libtorch without c10d Gloo headers; install libgloo-dev and rebuild)");
#endif
    } else {
#ifdef USE_C10D_NCCL
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = g->impl_->timeout;
      g->impl_->backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(g->impl_->store, env.rank, env.world_size, opts);
#else
      fail("this build has no NCCL backend (libtorch without CUDA); use --dist-backend gloo");
#endif
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    const std::string m = short_message(e);
    if (mentions(m, "imeout") || mentions(m, "imed out"))  // the peers' connections (Gloo's full mesh)
      fail("rank ", env.rank, ": the rendezvous at ", where, " did not complete (", env.world_size,
           " ranks, --dist-timeout ", o.timeout_s, " s): not every rank arrived (", m, ")");
    fail("rank ", env.rank, ": creating the ", backend, " process group of ", env.world_size, " ranks via ", where,
         " failed: ", m);
  }
  g->backend_ = backend;
  g->barrier();  // every rank is connected before training starts
  return g;
}

namespace {

[[noreturn]] void collective_failed(ProcessGroup& g, const char* what, const std::exception& e) {
  fail("rank ", g.rank(), ": ", what, " across ", g.size(), " ranks (", g.backend(), ") failed: ",
       short_message(e), " (a peer rank may have exited or stalled beyond --dist-timeout ", g.timeout_s(),
       " s; see its output)");
}

template <typename F>
void run_collective(ProcessGroup& g, ProcessGroup::Impl& impl, const char* what, double& comm_s, F&& start) {
  const auto t0 = Clock::now();
  try {
    auto work = start();
    work->wait(impl.timeout);
  } catch (const std::exception& e) {
    collective_failed(g, what, e);
  }
  comm_s += std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

namespace {

void all_reduce(ProcessGroup& g, ProcessGroup::Impl& impl, at::Tensor& t, c10d::ReduceOp op, const char* what,
                double& comm_s) {
  if (!impl.backend) return;
  std::vector<at::Tensor> v{t};
  run_collective(g, impl, what, comm_s, [&] {
    c10d::AllreduceOptions o;
    o.reduceOp = op;
    return impl.backend->allreduce(v, o);
  });
}

}  // namespace

void ProcessGroup::all_reduce_sum(at::Tensor& t) {
  all_reduce(*this, *impl_, t, c10d::ReduceOp::SUM, "all_reduce", comm_s_);
}

void ProcessGroup::all_reduce_max(at::Tensor& t) {
  all_reduce(*this, *impl_, t, c10d::ReduceOp::MAX, "all_reduce(max)", comm_s_);
}

void ProcessGroup::all_gather(const at::Tensor& in, at::Tensor& out) {
  const int64_t n = in.numel();
  SK_CHECK(out.numel() == n * size(), "all_gather: output has ", out.numel(), " elements, expected ", n * size());
  if (!impl_->backend) {
    out.copy_(in.reshape(out.sizes()));
    return;
  }
  std::vector<std::vector<at::Tensor>> outs(1);
  for (int r = 0; r < size(); ++r) outs[0].push_back(out.view(-1).narrow(0, r * n, n));
  std::vector<at::Tensor> ins{in.view(-1)};
  run_collective(*this, *impl_, "all_gather", comm_s_, [&] { return impl_->backend->allgather(outs, ins); });
}

PendingWork ProcessGroup::all_gather_async(const at::Tensor& in, at::Tensor& out) {
  const int64_t n = in.numel();
  SK_CHECK(out.numel() == n * size(), "all_gather: output has ", out.numel(), " elements, expected ", n * size());
  if (!impl_->backend) {
    out.copy_(in.reshape(out.sizes()));
    return {};
  }
  std::vector<std::vector<at::Tensor>> outs(1);
  for (int r = 0; r < size(); ++r) outs[0].push_back(out.view(-1).narrow(0, r * n, n));
  std::vector<at::Tensor> ins{in.view(-1)};
  decltype(impl_->backend->allgather(outs, ins)) work;
  try {
    work = impl_->backend->allgather(outs, ins);
  } catch (const std::exception& e) {
    collective_failed(*this, "all_gather", e);
  }
  // The work keeps its tensors alive; the wait is timed into the communication share.
  return PendingWork([this, work, outs, ins]() mutable {
    const auto t0 = Clock::now();
    try {
      work->wait(impl_->timeout);
    } catch (const std::exception& e) {
      collective_failed(*this, "all_gather", e);
    }
    comm_s_ += std::chrono::duration<double>(Clock::now() - t0).count();
  });
}

void ProcessGroup::reduce_scatter_sum(const at::Tensor& in, at::Tensor& out) {
  const int64_t n = out.numel();
  SK_CHECK(in.numel() == n * size(), "reduce_scatter: input has ", in.numel(), " elements, expected ", n * size());
  if (!impl_->backend) {
    out.copy_(in.reshape(out.sizes()));
    return;
  }
  if (backend_ == "nccl") {
    std::vector<at::Tensor> outs{out.view(-1)};
    std::vector<std::vector<at::Tensor>> ins(1);
    for (int r = 0; r < size(); ++r) ins[0].push_back(in.view(-1).narrow(0, r * n, n));
    run_collective(*this, *impl_, "reduce_scatter", comm_s_, [&] {
      c10d::ReduceScatterOptions o;
      o.reduceOp = c10d::ReduceOp::SUM;
      return impl_->backend->reduce_scatter(outs, ins, o);
    });
    return;
  }
  // Gloo has no reduce-scatter in libtorch 1.13: all-reduce a copy and keep this rank's slice (the
  // same sums; twice the traffic of a true reduce-scatter).
  at::Tensor tmp = in.view(-1).clone();
  all_reduce_sum(tmp);
  out.view(-1).copy_(tmp.narrow(0, static_cast<int64_t>(rank()) * n, n));
}

void ProcessGroup::broadcast(at::Tensor& t, int root) {
  if (!impl_->backend) return;
  std::vector<at::Tensor> v{t};
  run_collective(*this, *impl_, "broadcast", comm_s_, [&] {
    c10d::BroadcastOptions o;
    o.rootRank = root;
    return impl_->backend->broadcast(v, o);
  });
}

void ProcessGroup::barrier() {
  if (!impl_->backend) return;
  // A one-element all-reduce: a barrier that also works on NCCL without a device guess.
  auto t = torch::zeros({1}, torch::TensorOptions().dtype(torch::kFloat32).device(impl_->device));
  all_reduce_sum(t);
}

std::vector<double> ProcessGroup::all_reduce_sum(const std::vector<double>& values) {
  if (!impl_->backend) return values;
  auto t = torch::tensor(values, torch::kFloat64).to(impl_->device);
  all_reduce_sum(t);
  t = t.cpu();
  return std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
}

std::vector<int> ProcessGroup::failed_ranks(bool ok) {
  std::vector<double> flags(static_cast<size_t>(size()), 0.0);
  flags[static_cast<size_t>(rank())] = ok ? 0.0 : 1.0;
  flags = all_reduce_sum(flags);
  std::vector<int> out;
  for (size_t r = 0; r < flags.size(); ++r)
    if (flags[r] > 0) out.push_back(static_cast<int>(r));
  return out;
}

double ProcessGroup::take_comm_seconds() {
  const double s = comm_s_;
  comm_s_ = 0;
  return s;
}

}  // namespace safekey::dist
