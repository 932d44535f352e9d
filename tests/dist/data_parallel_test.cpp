// Data-parallel training with real processes: `safekey launch` starts Gloo ranks on loopback and
// the runs are compared with one process. Each run takes a few seconds on 2 cores.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <regex>

#include "dist/procs.h"
#include "safekey/dist/launcher.h"
#include "safekey/io/safetensors.h"
#include "safekey/train/checkpoint.h"
#include "safekey/train/metrics.h"
#include "safekey/util/error.h"
#include "support/support.h"
#include "train/tiny.h"

namespace fs = std::filesystem;
using namespace safekey;

namespace {

struct Fixture {
  std::string dir, model, data;
};

Fixture make_fixture(const std::string& tag, int examples) {
  Fixture f;
  f.dir = test::make_temp_dir(tag);
  f.model = test::make_tiny_model(f.dir + "/model");
  f.data = test::make_tiny_data(f.dir + "/data.jsonl", examples);
  return f;
}

// SafeKey on (QMM + head in the last epoch), clipping on (the global norm decides the scale).
std::vector<std::string> train_args(const Fixture& f, const std::string& out, int accum, int epochs = 2) {
  return {"safekey", "train", "--model", f.model, "--data", f.data, "--output-dir", out,
          "--num-train-epochs", std::to_string(epochs), "--per-device-train-batch-size", "2",
          "--gradient-accumulation-steps", std::to_string(accum), "--learning-rate", "1e-3",
          "--warmup-ratio", "0.1", "--key-sentence-prediction", "--safety-head", "--last-k-epoch", "1",
          "--max-grad-norm", "1.0", "--dist-timeout", "30", "--threads", "1"};
}

std::vector<std::string> plus(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

test::RunResult run_one(std::vector<std::string> args) {
  args[0] = test::safekey_exe();
  return test::run_process(args);
}

test::RunResult run_launch(int nproc, const std::vector<std::string>& args) {
  std::vector<std::string> l = {test::safekey_exe(), "launch", "--nproc-per-node", std::to_string(nproc),
                                "--master-port", "0", "--term-timeout", "5", "--"};
  return test::run_process(plus(l, args));
}

std::map<std::string, std::vector<float>> weights(const std::string& run) {
  auto ck = train::list_checkpoints(run);
  SK_CHECK(!ck.empty(), run, ": no checkpoint");
  io::SafetensorsFile f(ck.back() + "/model/model.safetensors");
  std::map<std::string, std::vector<float>> out;
  for (const auto& n : f.names()) {
    auto v = f.get(n);
    std::vector<float> w(v.nbytes / 4);
    std::memcpy(w.data(), v.data, v.nbytes);
    out[n] = std::move(w);
  }
  return out;
}

// Same number of steps; every logged term within `rel` (relative to max(1, |x|)); tokens and lr
// exactly; the final weights within `wabs`.
void expect_same_run(const std::string& a, const std::string& b, double rel, double wabs) {
  auto ma = train::read_metrics(a + "/metrics.jsonl"), mb = train::read_metrics(b + "/metrics.jsonl");
  ASSERT_EQ(ma.size(), mb.size()) << "the runs took different numbers of steps (or a rank also wrote metrics)";
  ASSERT_FALSE(ma.empty());
  double worst = 0;
  for (size_t i = 0; i < ma.size(); ++i) {
    EXPECT_EQ(ma[i].tokens, mb[i].tokens) << "step " << i + 1 << ": the ranks did not see the same rows";
    EXPECT_EQ(ma[i].lr, mb[i].lr) << "step " << i + 1;
    for (auto [x, y] : {std::pair{ma[i].loss, mb[i].loss}, {ma[i].sft_loss, mb[i].sft_loss}, {ma[i].k_loss, mb[i].k_loss},
                        {ma[i].head_loss, mb[i].head_loss}, {ma[i].grad_norm, mb[i].grad_norm},
                        {ma[i].token_acc, mb[i].token_acc}, {ma[i].k_acc, mb[i].k_acc}}) {
      const double d = std::abs(x - y) / std::max(1.0, std::abs(x));
      worst = std::max(worst, d);
      EXPECT_LE(d, rel) << "step " << i + 1 << ": " << x << " vs " << y;
    }
  }
  auto wa = weights(a), wb = weights(b);
  ASSERT_EQ(wa.size(), wb.size());
  double wd = 0;
  for (auto& [n, v] : wa)
    for (size_t i = 0; i < v.size(); ++i) wd = std::max(wd, static_cast<double>(std::abs(v[i] - wb[n][i])));
  EXPECT_LE(wd, wabs);
  std::printf("%s vs %s: %zu steps, worst metric difference %.3g, worst weight difference %.3g\n", a.c_str(),
              b.c_str(), ma.size(), worst, wd);
}

// Float sums over ranks are ordered differently from one process's accumulation: observed ≤ 2e-7
// (metrics) and ≤ 2e-7 (weights) for these runs; the bounds leave 50x room and are still far below
// what a wrong reduction gives (≥ 1e-3).
constexpr double kRel = 1e-5, kWeights = 1e-5;

}  // namespace

// 45 examples = 22 micro-batches of 2 per epoch; 4 per step → 6 steps, the last one of 2 micro-batches.
// Catches: gradients not reduced (weights differ), averaged over ranks instead of summed with the
// global 1/window scale (the short last step differs), overlapping or wrong data slices (tokens
// differ), a rank-local gradient norm for clipping (clipping is active: grad norm ≈ 2 > 1), metrics
// written by every rank (line count).
TEST(DataParallel, TwoRanksEqualOneRankWithDoubledAccumulationAtEveryZeroStage) {
  auto f = make_fixture("dp_equiv", 45);
  auto one = run_one(train_args(f, f.dir + "/w1", 4));
  ASSERT_EQ(one.exit_code, 0) << one.err;
  for (int stage : {0, 1, 2}) {
    SCOPED_TRACE(cat("zero stage ", stage));
    const std::string out = cat(f.dir, "/w2z", stage);
    auto two = run_launch(2, plus(train_args(f, out, 2), {"--zero-stage", std::to_string(stage)}));
    ASSERT_EQ(two.exit_code, 0) << two.err;
    expect_same_run(f.dir + "/w1", out, kRel, kWeights);
    EXPECT_EQ(read_json_file(out + "/run_config.json")["world_size"], 2);
    const json d = read_json_file(out + "/distributed.json");
    EXPECT_EQ(d["backend"], "gloo");
    const auto bytes = d["optimizer_state_bytes_per_rank"].get<std::vector<double>>();
    ASSERT_EQ(bytes.size(), 2u);
    const double whole = read_json_file(f.dir + "/w1/distributed.json")["optimizer_state_bytes_per_rank"][0];
    if (stage == 0) EXPECT_EQ(bytes[0], whole);
    else EXPECT_NEAR(bytes[0], whole / 2, whole * 0.01) << "ZeRO-" << stage << " holds about 1/W of the state";
    EXPECT_NE(two.out.find("[rank 0] {\"checkpoint\""), std::string::npos) << "one result line, from rank 0";
    EXPECT_EQ(two.out.find("[rank 1] {"), std::string::npos) << two.out;
  }
}

// Three ranks with one accumulation step: the last step of each epoch has a single micro-batch, so
// ranks 1 and 2 contribute nothing to it (zero gradients, still in every collective). With gradient
// checkpointing and ZeRO-2 (gradients reduce-scattered after every micro-batch).
TEST(DataParallel, ThreeRanksWithAnUnevenTailAndGradientCheckpointing) {
  auto f = make_fixture("dp_three", 45);
  auto one = run_one(train_args(f, f.dir + "/w1", 3));
  ASSERT_EQ(one.exit_code, 0) << one.err;
  auto three = run_launch(3, plus(train_args(f, f.dir + "/w3", 1), {"--zero-stage", "2", "--gradient-checkpointing"}));
  ASSERT_EQ(three.exit_code, 0) << three.err;
  expect_same_run(f.dir + "/w1", f.dir + "/w3", kRel, kWeights);
}

// Resumes the run in <dir>/b with `resume_args` (2 ranks) and expects it to equal the uninterrupted
// run in <dir>/a: every step's loss and grad norm, and the bytes of `files` in the last checkpoint.
static void expect_resumed_equals(const Fixture& f, const std::vector<std::string>& resume_args,
                                  const std::vector<std::string>& files) {
  auto b2 = run_launch(2, resume_args);
  ASSERT_EQ(b2.exit_code, 0) << b2.err;
  auto ma = train::read_metrics(f.dir + "/a/metrics.jsonl"), mb = train::read_metrics(f.dir + "/b/metrics.jsonl");
  ASSERT_EQ(ma.size(), mb.size());
  for (size_t i = 0; i < ma.size(); ++i) {
    EXPECT_EQ(ma[i].loss, mb[i].loss) << "step " << i + 1;
    EXPECT_EQ(ma[i].grad_norm, mb[i].grad_norm) << "step " << i + 1;
  }
  const std::string last = fs::path(train::list_checkpoints(f.dir + "/a").back()).filename();
  for (const auto& file : files)
    EXPECT_TRUE(read_file(f.dir + "/a/" + last + "/" + file) == read_file(f.dir + "/b/" + last + "/" + file)) << file;
}

// ZeRO-3: the decoder layers' parameters live sharded and are gathered around each use (forward,
// and the recompute in backward, where their gradients are reduce-scattered). At 2 ranks (without
// --gradient-checkpointing; the layers recompute anyway) and at 4 ranks with it, where the last step
// of each epoch has 2 micro-batches so ranks 2 and 3 run idle passes: the same run as one process.
// Catches: a gather that puts slices in the wrong place, gradients of a recomputed layer dropped or
// counted twice, idle ranks that skip their passes (a hang ended by the timeout, or other numbers),
// and parameters updated from stale slices.
TEST(DataParallel, ZeroThreeAtTwoAndFourRanksEqualsOneRank) {
  auto f = make_fixture("dp_zero3", 45);
  auto one = run_one(train_args(f, f.dir + "/w1", 4));
  ASSERT_EQ(one.exit_code, 0) << one.err;
  auto two = run_launch(2, plus(train_args(f, f.dir + "/w2", 2), {"--zero-stage", "3"}));
  ASSERT_EQ(two.exit_code, 0) << two.err;
  expect_same_run(f.dir + "/w1", f.dir + "/w2", kRel, kWeights);
  auto four = run_launch(4, plus(train_args(f, f.dir + "/w4", 1), {"--zero-stage", "3", "--gradient-checkpointing"}));
  ASSERT_EQ(four.exit_code, 0) << four.err;
  expect_same_run(f.dir + "/w1", f.dir + "/w4", kRel, kWeights);
  const auto bytes = read_json_file(f.dir + "/w4/distributed.json")["optimizer_state_bytes_per_rank"].get<std::vector<double>>();
  const double whole = read_json_file(f.dir + "/w1/distributed.json")["optimizer_state_bytes_per_rank"][0];
  for (double b : bytes) EXPECT_LE(b, whole / 4 + 4096) << "each rank holds about 1/4 of the state";
}

// Resume at W=2 with ZeRO-3: the checkpoint's model is gathered for the save, the run resumes into
// the sharded slices, and continues bit-exactly.
TEST(DataParallel, ZeroThreeResumeIsBitExact) {
  auto f = make_fixture("dp_zero3_resume", 45);
  const std::vector<std::string> z3 = {"--zero-stage", "3", "--save-steps", "4"};
  auto a = run_launch(2, plus(train_args(f, f.dir + "/a", 2), z3));
  ASSERT_EQ(a.exit_code, 0) << a.err;
  auto b1 = run_launch(2, plus(train_args(f, f.dir + "/b", 2), plus(z3, {"--max-steps", "5"})));
  ASSERT_EQ(b1.exit_code, 0) << b1.err;
  expect_resumed_equals(f, plus(train_args(f, f.dir + "/b", 2), plus(z3, {"--resume"})), {"model/model.safetensors"});
}

// Resume at W=2 (ZeRO-1: per-rank optimizer partitions) continues bit-exactly: a run stopped after 5
// steps and resumed equals the uninterrupted run number for number, and its last checkpoint holds
// the same bytes. Resuming it at another world size is refused with the reason.
TEST(DataParallel, ResumeAtTwoRanksIsBitExactAndAnotherWorldSizeIsRefused) {
  auto f = make_fixture("dp_resume", 45);
  const std::vector<std::string> z1 = {"--zero-stage", "1", "--save-steps", "4"};
  auto a = run_launch(2, plus(train_args(f, f.dir + "/a", 2), z1));
  ASSERT_EQ(a.exit_code, 0) << a.err;
  auto b1 = run_launch(2, plus(train_args(f, f.dir + "/b", 2), plus(z1, {"--max-steps", "5"})));
  ASSERT_EQ(b1.exit_code, 0) << b1.err;
  ASSERT_EQ(train::read_metrics(f.dir + "/b/metrics.jsonl").size(), 5u);
  for (const char* file : {"optimizer-rank-00000-of-00002.safetensors", "optimizer-rank-00001-of-00002.safetensors",
                           "rng-rank-00000.json", "rng-rank-00001.json", "trainer_state.json"})
    EXPECT_TRUE(path_exists(f.dir + "/b/checkpoint-5/" + file)) << file;

  auto refused = run_one(plus(train_args(f, f.dir + "/b", 4), {"--zero-stage", "1", "--save-steps", "4", "--resume"}));
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("world_size: 2 -> 1"), std::string::npos) << refused.err;

  expect_resumed_equals(f, plus(train_args(f, f.dir + "/b", 2), plus(z1, {"--resume"})),
                        {"model/model.safetensors", "optimizer-rank-00000-of-00002.safetensors",
                         "optimizer-rank-00001-of-00002.safetensors", "safety_head.safetensors"});
}

// SIGKILL of rank 1 in the middle of a run: the launcher stops rank 0, exits non-zero naming rank 1
// and the signal; every checkpoint folder left is complete (all ranks' files), no temp folder is
// taken for one, and `--resume` finishes the run with the uninterrupted run's numbers.
TEST(DataParallel, SigkillOfRankOneStopsTheJobAndResumeContinues) {
  auto f = make_fixture("dp_kill", 160);
  const std::vector<std::string> opts = {"--zero-stage", "2", "--save-steps", "3"};
  auto full = run_launch(2, plus(train_args(f, f.dir + "/a", 2, 3), opts));
  ASSERT_EQ(full.exit_code, 0) << full.err;
  const size_t total = train::read_metrics(f.dir + "/a/metrics.jsonl").size();
  ASSERT_EQ(total, 60u);  // 80 micro-batches / 4 per step × 3 epochs

  const std::string out = f.dir + "/b";
  std::vector<std::string> l = {test::safekey_exe(), "launch", "--nproc-per-node", "2", "--master-port", "0",
                                "--term-timeout", "5", "--"};
  auto launcher = test::spawn_proc(plus(l, plus(train_args(f, out, 2, 3), opts)), {}, f.dir + "/b.log");
  std::smatch m;
  pid_t rank1 = -1;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(50);
  while (std::chrono::steady_clock::now() < deadline) {
    const std::string log = launcher.output();
    if (rank1 < 0 && std::regex_search(log, m, std::regex("started rank 1 \\(pid (\\d+)\\)"))) rank1 = std::stoi(m[1]);
    const std::string metrics = path_exists(out + "/metrics.jsonl") ? read_file(out + "/metrics.jsonl") : "";
    if (rank1 > 0 && std::count(metrics.begin(), metrics.end(), '\n') >= 20) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_GT(rank1, 0) << launcher.output();
  ASSERT_EQ(kill(rank1, SIGKILL), 0);
  ASSERT_TRUE(test::wait_proc(launcher, 50)) << "the launcher did not stop after rank 1 died";
  const std::string log = launcher.output();
  EXPECT_FALSE(launcher.exited_ok());
  EXPECT_NE(log.find("launch: failed: rank 1"), std::string::npos) << log;
  EXPECT_NE(log.find("SIGKILL"), std::string::npos) << log;
  const auto ckpts = train::list_checkpoints(out);
  ASSERT_FALSE(ckpts.empty());
  for (const auto& ck : ckpts)
    for (const char* file : {"optimizer-rank-00000-of-00002.safetensors", "optimizer-rank-00001-of-00002.safetensors",
                             "rng-rank-00000.json", "rng-rank-00001.json", "model/model.safetensors"})
      EXPECT_TRUE(path_exists(ck + "/" + file)) << ck << " is incomplete: no " << file;
  const int64_t resumed_from = train::read_trainer_state(ckpts.back()).global_step;
  std::printf("rank 1 killed; resuming from %s (step %lld of %zu)\n", ckpts.back().c_str(),
              static_cast<long long>(resumed_from), total);

  auto again = run_launch(2, plus(train_args(f, out, 2, 3), plus(opts, {"--resume"})));
  ASSERT_EQ(again.exit_code, 0) << again.err;
  auto ma = train::read_metrics(f.dir + "/a/metrics.jsonl"), mb = train::read_metrics(out + "/metrics.jsonl");
  ASSERT_EQ(mb.size(), total);
  for (size_t i = 0; i < total; ++i) EXPECT_EQ(ma[i].loss, mb[i].loss) << "step " << i + 1;
  for (const auto& e : fs::directory_iterator(out))
    EXPECT_NE(e.path().filename().string().rfind(".tmp-", 0), 0u) << "a temp folder survived the resumed run";
}

// Bad environments end with one clear error, within the timeout, never a hang.
TEST(DataParallel, BadEnvironmentsFailClearly) {
  auto f = make_fixture("dp_env", 8);
  const auto args = train_args(f, f.dir + "/out", 1);
  std::vector<std::string> argv = args;
  argv[0] = test::safekey_exe();
  auto run_env = [&](const test::EnvVars& env, const std::vector<std::string>& extra, const std::string& tag) {
    auto p = test::spawn_proc(plus(argv, extra), env, f.dir + "/" + tag + ".log");
    EXPECT_TRUE(test::wait_proc(p, 40)) << tag << " hung";
    EXPECT_FALSE(p.exited_ok()) << tag;
    return p.output();
  };
  const int port = dist::free_port("127.0.0.1");
  // A peer that never arrives: rank 0 of 2 alone.
  auto lonely = run_env(test::rank_env(0, 2, port), {"--dist-timeout", "3"}, "lonely0");
  EXPECT_NE(lonely.find("rank 0: the rendezvous at 127.0.0.1:"), std::string::npos) << lonely;
  // A rank whose rank 0 never comes.
  auto orphan = run_env(test::rank_env(1, 2, port), {"--dist-timeout", "3"}, "lonely1");
  EXPECT_NE(orphan.find("rank 1:"), std::string::npos) << orphan;
  EXPECT_NE(orphan.find("127.0.0.1:" + std::to_string(port)), std::string::npos) << orphan;
  // The port is taken.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const int busy = ntohs(a.sin_port);
  auto taken = run_env(test::rank_env(0, 2, busy), {"--dist-timeout", "3"}, "busy");
  close(fd);
  EXPECT_NE(taken.find("cannot host the rendezvous on 127.0.0.1:" + std::to_string(busy)), std::string::npos) << taken;
  // Inconsistent variables.
  auto bad = run_env(test::rank_env(2, 2, port), {}, "badrank");
  EXPECT_NE(bad.find("RANK=2 is outside [0, WORLD_SIZE=2)"), std::string::npos) << bad;
  auto noaddr = run_env({{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"LOCAL_RANK", "0"}, {"MASTER_PORT", "1234"},
                         {"MASTER_ADDR", ""}}, {}, "noaddr");
  EXPECT_NE(noaddr.find("MASTER_ADDR is not set"), std::string::npos) << noaddr;
}

// The launcher itself on small shell commands: output prefixes, the environment it gives, a failing
// rank stopping the others (exit status and the rank's name), and SIGTERM forwarding.
TEST(Launcher, PrefixesEnvironmentFailuresAndSignals) {
  const std::string dir = test::make_temp_dir("launcher");
  auto echo = test::run_process({test::safekey_exe(), "launch", "--nproc-per-node", "2", "--master-port", "0", "--",
                                 "sh", "-c", "echo out $RANK/$WORLD_SIZE/$LOCAL_RANK/$MASTER_ADDR; echo err $RANK >&2"});
  EXPECT_EQ(echo.exit_code, 0) << echo.err;
  EXPECT_NE(echo.out.find("[rank 0] out 0/2/0/127.0.0.1"), std::string::npos) << echo.out;
  EXPECT_NE(echo.out.find("[rank 1] out 1/2/1/127.0.0.1"), std::string::npos) << echo.out;
  EXPECT_NE(echo.err.find("[rank 1] err 1"), std::string::npos) << echo.err;

  const auto t0 = std::chrono::steady_clock::now();
  auto failing = test::run_process({test::safekey_exe(), "launch", "--nproc-per-node", "2", "--master-port", "0",
                                    "--term-timeout", "5", "--", "sh", "-c",
                                    "if [ $RANK = 1 ]; then exit 3; fi; exec sleep 60"});
  EXPECT_EQ(failing.exit_code, 3);
  EXPECT_NE(failing.err.find("launch: failed: rank 1"), std::string::npos) << failing.err;
  EXPECT_NE(failing.err.find("exited with status 3"), std::string::npos) << failing.err;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(30)) << "rank 0 was not stopped";

  auto p = test::spawn_proc({test::safekey_exe(), "launch", "--nproc-per-node", "2", "--master-port", "0", "--",
                             "sh", "-c", "trap 'echo got TERM; exit 0' TERM; echo ready; while :; do sleep 0.1; done"},
                            {}, dir + "/signal.log");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (p.output().find("[rank 1] ready") == std::string::npos && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  kill(p.pid, SIGTERM);
  ASSERT_TRUE(test::wait_proc(p, 20));
  const std::string log = p.output();
  EXPECT_NE(log.find("[rank 0] got TERM"), std::string::npos) << log;
  EXPECT_NE(log.find("[rank 1] got TERM"), std::string::npos) << log;
  EXPECT_TRUE(WIFEXITED(p.status) && WEXITSTATUS(p.status) == 128 + SIGTERM) << log;
}

// The same run started by PyTorch's own launcher (`python3 -m torch.distributed.run --no_python`)
// when Debian's python3-torch is installed: the torchrun contract as PyTorch sets it.
TEST(DataParallel, TorchDistributedRunLaunchesTheSameRun) {
  auto probe = test::run_process({"/usr/bin/python3", "-c", "import torch.distributed.run"});
  if (probe.exit_code != 0)
    GTEST_SKIP() << "python3 cannot import torch.distributed.run (Debian's python3-torch is not installed): "
                 << probe.err.substr(0, 200);
  auto f = make_fixture("dp_torchrun", 45);
  auto one = run_one(train_args(f, f.dir + "/w1", 4));
  ASSERT_EQ(one.exit_code, 0) << one.err;
  auto args = train_args(f, f.dir + "/tr", 2);
  args[0] = test::safekey_exe();
  // torchrun's agent hosts the store on the master port itself (TORCHELASTIC_USE_AGENT_STORE): a rank 0
  // that tried to host one there too would fail. --redirects/--tee 1: torch 1.13's parser of their
  // default "0" breaks on Python 3.11 (its Std flag enum no longer iterates the zero member).
  std::vector<std::string> l = {"/usr/bin/python3", "-m", "torch.distributed.run", "--nproc_per_node=2",
                                "--master_addr=127.0.0.1",
                                "--master_port=" + std::to_string(dist::free_port("127.0.0.1")),
                                "--redirects=1", "--tee=1", "--log_dir=" + f.dir + "/torchrun-logs", "--no_python"};
  auto tr = test::run_process(plus(l, args));
  ASSERT_EQ(tr.exit_code, 0) << tr.err;
  expect_same_run(f.dir + "/w1", f.dir + "/tr", kRel, kWeights);
}
