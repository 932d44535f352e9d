// Exact resume: a real `safekey train` process is killed with SIGKILL in the middle of an epoch and
// resumed with --resume; its per-step metrics (every loss term, gradient norm, lr) must equal the
// uninterrupted run's bit for bit (CPU, same thread count).
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "safekey/train/checkpoint.h"
#include "safekey/train/metrics.h"
#include "safekey/util/file.h"
#include "support/support.h"
#include "train/tiny.h"

extern char** environ;

using namespace safekey;

namespace {

std::vector<std::string> train_args(const std::string& model, const std::string& data, const std::string& out) {
  return {test::safekey_exe(), "train", "--model", model, "--data", data, "--output-dir", out,
          "--num-train-epochs", "3", "--per-device-train-batch-size", "2", "--gradient-accumulation-steps", "2",
          "--learning-rate", "1e-3", "--warmup-ratio", "0.1", "--key-sentence-prediction", "--safety-head",
          "--last-k-epoch", "2", "--save-steps", "7", "--save-total-limit", "2", "--threads", "1"};
}

pid_t spawn(const std::vector<std::string>& args, const std::string& log) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = -1;
  EXPECT_EQ(posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  return pid;
}

size_t count_lines(const std::string& path) {
  if (!path_exists(path)) return 0;
  std::string s = read_file(path);
  return static_cast<size_t>(std::count(s.begin(), s.end(), '\n'));
}

TEST(Resume, SigkillMidEpochThenResumeIsBitExact) {
  const std::string dir = test::make_temp_dir("resume");
  const std::string model = test::make_tiny_model(dir + "/model");
  const std::string data = test::make_tiny_data(dir + "/data.jsonl", 120);

  // The uninterrupted run: 120 examples / 2 = 60 micro-batches = 30 steps per epoch, 90 steps.
  auto a = test::run_process(train_args(model, data, dir + "/a"));
  ASSERT_EQ(a.exit_code, 0) << a.err;
  auto full = train::read_metrics(dir + "/a/metrics.jsonl");
  ASSERT_EQ(full.size(), 90u);

  // The killed run: SIGKILL once it is well into epoch 2 (objectives on), past a checkpoint.
  const std::string out_b = dir + "/b";
  pid_t pid = spawn(train_args(model, data, out_b), dir + "/b.log");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
  while (count_lines(out_b + "/metrics.jsonl") < 45 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the run ended before it was killed";
  const size_t steps_at_kill = count_lines(out_b + "/metrics.jsonl");
  auto ckpts = train::list_checkpoints(out_b);
  ASSERT_FALSE(ckpts.empty());
  const auto st = train::read_trainer_state(ckpts.back());
  std::printf("killed after %zu logged steps; resuming from %s (step %lld, epoch %lld, micro-batch %lld)\n",
              steps_at_kill, ckpts.back().c_str(), static_cast<long long>(st.global_step),
              static_cast<long long>(st.epoch), static_cast<long long>(st.micro_in_epoch));
  EXPECT_LT(steps_at_kill, 90u);
  EXPECT_GT(st.micro_in_epoch, 0) << "the checkpoint should be mid-epoch";

  auto args = train_args(model, data, out_b);
  args.push_back("--resume");
  auto b = test::run_process(args);
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_NE(b.err.find("resuming from"), std::string::npos);
  auto resumed = train::read_metrics(out_b + "/metrics.jsonl");
  ASSERT_EQ(resumed.size(), full.size());
  for (size_t i = 0; i < full.size(); ++i) {
    SCOPED_TRACE("step " + std::to_string(i + 1));
    EXPECT_EQ(resumed[i].step, full[i].step);
    EXPECT_EQ(resumed[i].loss, full[i].loss);
    EXPECT_EQ(resumed[i].sft_loss, full[i].sft_loss);
    EXPECT_EQ(resumed[i].k_loss, full[i].k_loss);
    EXPECT_EQ(resumed[i].head_loss, full[i].head_loss);
    EXPECT_EQ(resumed[i].grad_norm, full[i].grad_norm);
    EXPECT_EQ(resumed[i].lr, full[i].lr);
  }
  // The final weights agree too.
  EXPECT_EQ(read_file(dir + "/a/checkpoint-90/model/model.safetensors"),
            read_file(out_b + "/checkpoint-90/model/model.safetensors"));
  EXPECT_LE(train::list_checkpoints(out_b).size(), 2u);  // --save-total-limit 2
}

TEST(Resume, DifferentConfigIsRefusedNamingTheKeys) {
  const std::string dir = test::make_temp_dir("resume_cfg");
  const std::string model = test::make_tiny_model(dir + "/model");
  const std::string data = test::make_tiny_data(dir + "/data.jsonl", 8);
  auto args = train_args(model, data, dir + "/run");
  args[9] = "1";  // one epoch
  auto a = test::run_process(args);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  args.push_back("--resume");
  args.push_back("--learning-rate");
  args.push_back("5e-4");
  auto b = test::run_process(args);
  EXPECT_EQ(b.exit_code, 1);
  EXPECT_NE(b.err.find("different config"), std::string::npos) << b.err;
  EXPECT_NE(b.err.find("lr"), std::string::npos) << b.err;
}

}  // namespace
