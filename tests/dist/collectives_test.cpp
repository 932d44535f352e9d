// c10d through dist::ProcessGroup and the ZeRO optimizer with real processes (Gloo on loopback):
// this test executable starts copies of itself as the ranks (SAFEKEY_DIST_TEST_WORKER selects the
// worker, which runs before GoogleTest and exits). Catches: a collective that sums the wrong slice
// or returns before the peers contributed, reduce-scatter / all-gather slices in the wrong order,
// a sharded AdamW whose partitions do not add up to the whole update (or that updates a parameter no
// rank had a gradient for), a local instead of a global gradient norm, and per-rank optimizer state
// that is not 1/W of the whole.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "dist/procs.h"
#include "safekey/dist/env.h"
#include "safekey/dist/launcher.h"
#include "safekey/dist/process_group.h"
#include "safekey/dist/sharded_adamw.h"
#include "safekey/util/error.h"
#include "safekey/util/json.h"
#include "support/support.h"

using namespace safekey;

namespace {

#define WORKER_CHECK(cond, ...) SK_CHECK(cond, "worker check failed: " #cond " ", __VA_ARGS__)

void check_collectives(dist::ProcessGroup& g) {
  const int W = g.size(), r = g.rank();
  auto t = torch::tensor({1.0f * (r + 1), 10.0f * (r + 1)});
  g.all_reduce_sum(t);
  const float tri = W * (W + 1) / 2.0f;
  WORKER_CHECK(t[0].item<float>() == tri && t[1].item<float>() == 10 * tri, "all_reduce ", t);
  auto mx = torch::tensor({static_cast<float>(r)});
  g.all_reduce_max(mx);
  WORKER_CHECK(mx.item<float>() == W - 1, "all_reduce_max ", mx);
  auto mine = torch::full({3}, static_cast<float>(r));
  auto all = torch::empty({3 * W});
  g.all_gather(mine, all);
  for (int k = 0; k < W; ++k) WORKER_CHECK(all[3 * k + 2].item<float>() == k, "all_gather slot ", k, ": ", all);
  auto in = torch::arange(2 * W, torch::kFloat32) * (r + 1);  // rank r holds (r+1)·[0..2W)
  auto out = torch::empty({2});
  g.reduce_scatter_sum(in, out);
  WORKER_CHECK(out[0].item<float>() == 2 * r * tri && out[1].item<float>() == (2 * r + 1) * tri, "reduce_scatter ", out);
  auto b = torch::full({2}, static_cast<float>(r + 7));
  g.broadcast(b, W - 1);
  WORKER_CHECK(b[0].item<float>() == W - 1 + 7, "broadcast ", b);
  auto v = g.all_reduce_sum(std::vector<double>{0.5, static_cast<double>(r)});
  WORKER_CHECK(v[0] == 0.5 * W && v[1] == W * (W - 1) / 2.0, "all_reduce_sum(vector)");
  auto failed = g.failed_ranks(r != 1);
  WORKER_CHECK(failed == std::vector<int>{1}, "failed_ranks");
  g.barrier();
}

// Parameters and gradients that every rank (and the one-process reference) can rebuild.
std::vector<dist::OptimParam> make_params() {
  torch::manual_seed(5);
  std::vector<dist::OptimParam> ps = {{"a", torch::randn({7, 5}), 0.1, {}},
                                      {"b", torch::randn({13}), 0.0, {}},
                                      {"never", torch::randn({4}), 0.1, {}},
                                      {"c", torch::randn({3, 3}), 0.1, {}}};
  for (auto& p : ps) p.param.set_requires_grad(true);
  return ps;
}

at::Tensor grad_for(int step, int rank, size_t param, const at::Tensor& like) {
  torch::manual_seed(static_cast<uint64_t>(1000 * step + 10 * rank + static_cast<int>(param)));
  return torch::randn(like.sizes());
}

// Three optimizer steps. Rank `r` of `W` contributes grad_for(step, r, ·); a world of one with
// `sum_over` > 1 feeds the sum of that many ranks' gradients (the reference). "b" has a gradient only
// from rank 0 in step 1; "never" never has one. Returns the final parameters and the norms.
json adamw_run(std::shared_ptr<dist::ProcessGroup> g, int stage, int sum_over, int64_t bucket_bytes) {
  auto ps = make_params();
  dist::ShardedAdamW opt(g, ps, tensor::AdamWHyper{0.9, 0.95, 1e-8}, dist::ShardingOptions{stage, bucket_bytes, {}});
  json norms = json::array();
  for (int step = 1; step <= 3; ++step) {
    for (size_t i = 0; i < ps.size(); ++i) {
      if (ps[i].name == "never") continue;
      at::Tensor sum;
      for (int k = 0; k < sum_over; ++k) {
        const int rank = sum_over > 1 ? k : g->rank();
        if (ps[i].name == "b" && step == 1 && rank != 0) continue;
        auto gr = grad_for(step, rank, i, ps[i].param);
        sum = sum.defined() ? sum + gr : gr;
      }
      if (sum.defined()) ps[i].param.mutable_grad() = sum;
    }
    opt.accumulate_gradients();
    opt.reduce_gradients();
    norms.push_back(opt.clip_grad_norm(3.0));
    opt.step(0.05);
    opt.zero_grad();
  }
  json out{{"norms", norms}, {"state_bytes", opt.state_bytes()}};
  for (auto& p : ps) {
    auto c = p.param.detach().contiguous();
    out["params"][p.name] = std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  }
  return out;
}

int worker_main(const std::string& mode) {
  auto env = dist::read_env();
  auto g = dist::ProcessGroup::create(env, dist::GroupOptions{"gloo", "cpu", 30});
  if (mode == "collectives") {
    check_collectives(*g);
    return 0;
  }
  const int stage = std::atoi(std::getenv("SAFEKEY_DIST_TEST_STAGE"));
  json out = adamw_run(g, stage, 1, 64);  // 64-byte buckets: parameters straddle buckets and slices
  std::vector<double> bytes(static_cast<size_t>(g->size()), 0.0);
  bytes[static_cast<size_t>(g->rank())] = static_cast<double>(out["state_bytes"].get<int64_t>());
  out["state_bytes_per_rank"] = g->all_reduce_sum(bytes);
  if (g->rank() == 0) write_file_atomic(std::getenv("SAFEKEY_DIST_TEST_OUT"), out.dump());
  return 0;
}

// Runs before GoogleTest's main when this executable is started as a rank.
const int kWorkerHook = [] {
  const char* mode = std::getenv("SAFEKEY_DIST_TEST_WORKER");
  if (!mode) return 0;
  int rc = 1;
  try {
    rc = worker_main(mode);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rank %s: %s\n", std::getenv("RANK"), e.what());
  }
  std::fflush(nullptr);
  std::_Exit(rc);
}();

std::string self_exe() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return std::string(buf, static_cast<size_t>(std::max<ssize_t>(n, 0)));
}

// Starts W ranks of this executable in `mode` and waits (bounded); every rank must exit 0.
void run_ranks(int W, const std::string& mode, const test::EnvVars& extra, const std::string& dir) {
  const int port = dist::free_port("127.0.0.1");
  std::vector<test::Proc> ps;
  for (int r = 0; r < W; ++r) {
    auto env = test::rank_env(r, W, port);
    env.emplace_back("SAFEKEY_DIST_TEST_WORKER", mode);
    for (auto& e : extra) env.push_back(e);
    ps.push_back(test::spawn_proc({self_exe()}, env, cat(dir, "/rank", r, ".log")));
  }
  for (auto& p : ps) {
    ASSERT_TRUE(test::wait_proc(p, 60)) << "rank timed out: " << p.output();
    EXPECT_TRUE(p.exited_ok()) << p.output();
  }
}

}  // namespace

TEST(Collectives, TwoAndThreeRanksOverGloo) {
  const std::string dir = test::make_temp_dir("collectives");
  run_ranks(2, "collectives", {}, dir);
  run_ranks(3, "collectives", {}, dir);
}

TEST(ShardedAdamW, EveryStageAtTwoRanksEqualsOneProcessOnSummedGradients) {
  const std::string dir = test::make_temp_dir("sharded_adamw");
  const json ref = adamw_run(std::make_shared<dist::ProcessGroup>(), 0, 2, 64);
  const int64_t whole = ref["state_bytes"].get<int64_t>();
  EXPECT_EQ(whole, (35 + 13 + 4 + 9) * 4 * 2);  // exp_avg + exp_avg_sq, fp32
  for (int stage : {0, 1, 2}) {
    SCOPED_TRACE(cat("stage ", stage));
    const std::string out = cat(dir, "/stage", stage, ".json");
    run_ranks(2, "adamw", {{"SAFEKEY_DIST_TEST_STAGE", std::to_string(stage)}, {"SAFEKEY_DIST_TEST_OUT", out}}, dir);
    ASSERT_TRUE(path_exists(out));
    const json got = read_json_file(out);
    for (auto it = ref["params"].begin(); it != ref["params"].end(); ++it) {
      auto a = it->get<std::vector<float>>(), b = got["params"][it.key()].get<std::vector<float>>();
      ASSERT_EQ(a.size(), b.size());
      for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-6) << it.key() << "[" << i << "]";
    }
    // "never" had no gradient anywhere: untouched (no weight decay applied either).
    auto never = make_params()[2].param.detach();
    EXPECT_EQ(got["params"]["never"].get<std::vector<float>>(),
              std::vector<float>(never.data_ptr<float>(), never.data_ptr<float>() + never.numel()));
    for (size_t s = 0; s < 3; ++s)
      EXPECT_NEAR(got["norms"][s].get<double>(), ref["norms"][s].get<double>(), 1e-5 * ref["norms"][s].get<double>());
    const auto per_rank = got["state_bytes_per_rank"].get<std::vector<double>>();
    if (stage == 0) {
      for (double b : per_rank) EXPECT_EQ(b, whole);
    } else {
      double sum = 0;
      for (double b : per_rank) {
        EXPECT_LE(b, whole / 2.0 + 64) << "a rank holds more than its half (+ one bucket of padding)";
        sum += b;
      }
      EXPECT_EQ(sum, whole) << "the partitions must cover every parameter exactly once";
    }
  }
}

TEST(ShardedAdamW, OneProcessStagesAgreeAndStateFilesAreNamedPerRank) {
  auto g = std::make_shared<dist::ProcessGroup>();
  const json s0 = adamw_run(g, 0, 1, 64), s1 = adamw_run(g, 1, 1, 64), s2 = adamw_run(g, 2, 1, 64);
  EXPECT_EQ(s0["params"], s1["params"]);
  for (auto it = s0["params"].begin(); it != s0["params"].end(); ++it) {
    auto a = it->get<std::vector<float>>(), b = s2["params"][it.key()].get<std::vector<float>>();
    for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-6) << it.key();
  }
  auto ps = make_params();
  dist::ShardedAdamW z0(g, ps, {}, {0, 64, {}}), z2(g, ps, {}, {2, 64, {}});
  EXPECT_EQ(z0.state_file_name(), "optimizer.safetensors");
  EXPECT_EQ(z2.state_file_name(), "optimizer-rank-00000-of-00001.safetensors");
}
