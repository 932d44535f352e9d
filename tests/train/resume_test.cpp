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
#include <filesystem>
#include <sstream>
#include <thread>

#include "safekey/train/checkpoint.h"
#include "safekey/train/data_fingerprint.h"
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

// --- resume guards the data ------------------------------------------------------------------

std::vector<std::string> short_args(const std::string& model, const std::string& data, const std::string& out) {
  return {"train", "--model", model, "--data", data, "--output-dir", out, "--num-train-epochs", "2",
          "--per-device-train-batch-size", "2", "--gradient-accumulation-steps", "2", "--learning-rate", "1e-3",
          "--threads", "1"};
}

std::vector<std::string> plus(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// A run of 16 examples stopped after 2 of its 8 steps (checkpoint-2), copied to `out` for each case.
struct Stopped {
  std::string dir, model, data, run;
  std::string copy(const std::string& name) const {
    std::filesystem::copy(run, dir + "/" + name, std::filesystem::copy_options::recursive);
    return dir + "/" + name;
  }
};

Stopped stopped_run(const std::string& tag) {
  Stopped s;
  s.dir = test::make_temp_dir(tag);
  s.model = test::make_tiny_model(s.dir + "/model");
  s.data = test::make_tiny_data(s.dir + "/data.jsonl", 16);
  s.run = s.dir + "/stopped";
  auto r = test::run_safekey(plus(short_args(s.model, s.data, s.run), {"--max-steps", "2"}));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(path_exists(s.run + "/checkpoint-2/trainer_state.json"));
  return s;
}

// The data file with one token of record `line` (0-based) changed, or with that record dropped.
std::string edited_data(const Stopped& s, int line, bool drop) {
  std::istringstream in(read_file(s.data));
  std::string out, l;
  for (int i = 0; std::getline(in, l); ++i) {
    if (i == line) {
      if (drop) continue;
      json j = json::parse(l);
      j["input_ids"][2] = j["input_ids"][2].get<int64_t>() == 11 ? 12 : 11;
      l = j.dump();
    }
    out += l + "\n";
  }
  const std::string path = s.dir + (drop ? "/dropped.jsonl" : "/edited.jsonl");
  write_file_atomic(path, out);
  return path;
}

// Catches a resume that does not look at the data at all (it would continue on the edited record),
// and a fingerprint that is not stable across processes (the unchanged data would be refused).
TEST(ResumeData, SameDataResumesAChangedRecordIsRefusedSayingWhatChanged) {
  const Stopped s = stopped_run("resume_data");
  const std::string same = s.copy("same");
  auto r = test::run_safekey(plus(short_args(s.model, s.data, same), {"--resume"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(train::read_metrics(same + "/metrics.jsonl").size(), 8u);
  EXPECT_EQ(r.err.find("warning"), std::string::npos) << r.err;

  // The same file name, one token of record 3 changed.
  const std::string changed = s.copy("changed");
  write_file_atomic(s.data + ".orig", read_file(s.data));
  const std::string edited = edited_data(s, 3, false);
  write_file_atomic(s.data, read_file(edited));
  r = test::run_safekey(plus(short_args(s.model, s.data, changed), {"--resume"}));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("the training data changed since " + changed + "/checkpoint-2 was written"),
            std::string::npos) << r.err;
  EXPECT_NE(r.err.find("dataset content: the tokenized examples differ"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("dataset count"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--resume-allow-data-change"), std::string::npos) << r.err;
  EXPECT_EQ(train::read_metrics(changed + "/metrics.jsonl").size(), 2u) << "a refused resume changes nothing";

  // With the override it proceeds, and says so.
  r = test::run_safekey(plus(short_args(s.model, s.data, changed), {"--resume", "--resume-allow-data-change"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("warning: resuming on changed training data"), std::string::npos) << r.err;
  EXPECT_EQ(train::read_metrics(changed + "/metrics.jsonl").size(), 8u);
  // ... and the new checkpoints carry the new data's fingerprint: resuming again on it is quiet.
  EXPECT_NE(train::read_trainer_state(changed + "/checkpoint-8").data_fingerprint,
            train::read_trainer_state(s.run + "/checkpoint-2").data_fingerprint);
  write_file_atomic(s.data, read_file(s.data + ".orig"));
}

// Catches a count change reported as a content change only, and a data file moved elsewhere being
// refused by the config check although --resume-allow-data-change was given.
TEST(ResumeData, FewerRecordsAreReportedAsACountChange) {
  const Stopped s = stopped_run("resume_count");
  const std::string run = s.copy("fewer");
  const std::string dropped = edited_data(s, 5, true);
  auto r = test::run_safekey(plus(short_args(s.model, dropped, run), {"--resume"}));
  EXPECT_EQ(r.exit_code, 1);
  // A new data path is a config difference first.
  EXPECT_NE(r.err.find("data_path"), std::string::npos) << r.err;
  r = test::run_safekey(plus(short_args(s.model, dropped, run), {"--resume", "--resume-allow-data-change"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("dataset count: 16 -> 15 examples"), std::string::npos) << r.err;
}

// Checkpoints written before fingerprints existed still resume, with a warning.
TEST(ResumeData, CheckpointWithoutFingerprintResumesWithAWarning) {
  const Stopped s = stopped_run("resume_old");
  const std::string run = s.copy("old");
  const std::string state = run + "/checkpoint-2/trainer_state.json";
  json j = read_json_file(state);
  ASSERT_TRUE(j.contains("data_fingerprint"));
  EXPECT_EQ(j["data_fingerprint"]["examples"], 16);
  j.erase("data_fingerprint");
  write_file_atomic(state, j.dump(1));
  auto r = test::run_safekey(plus(short_args(s.model, s.data, run), {"--resume"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("has no data fingerprint"), std::string::npos) << r.err;
}

// The parts of a fingerprint the trainer cannot tell from the data alone.
TEST(ResumeData, FingerprintChangesNameTokenizerTemplateAndOrder) {
  train::DataFingerprint a;
  a.examples = 10;
  a.content = "c1";
  a.epoch_order = "o1";
  a.tokenizer = "t1";
  a.chat_template = "j1";
  EXPECT_TRUE(train::fingerprint_changes(a, a).empty());
  EXPECT_EQ(train::DataFingerprint::from_json(a.to_json()).to_json(), a.to_json());
  auto b = a;
  b.tokenizer = "t2";
  b.content = "c2";
  auto ch = train::fingerprint_changes(a, b);
  ASSERT_EQ(ch.size(), 2u);
  EXPECT_EQ(ch[0].rfind("tokenizer: ", 0), 0u) << ch[0];
  EXPECT_EQ(ch[1].rfind("dataset content: ", 0), 0u) << ch[1];
  b = a;
  b.chat_template = "j2";
  ch = train::fingerprint_changes(a, b);
  ASSERT_EQ(ch.size(), 1u);
  EXPECT_EQ(ch[0].rfind("chat template: ", 0), 0u) << ch[0];
  b = a;
  b.epoch_order = "o2";
  ch = train::fingerprint_changes(a, b);
  ASSERT_EQ(ch.size(), 1u);
  EXPECT_EQ(ch[0].rfind("epoch order: ", 0), 0u) << ch[0];
  b = a;
  b.tokenizer = b.chat_template = "";  // pre-tokenized now
  ch = train::fingerprint_changes(a, b);
  ASSERT_EQ(ch.size(), 1u);
  EXPECT_EQ(ch[0].rfind("data format: ", 0), 0u) << ch[0];
  // The content hash sees every field the trainer reads, not only the ids.
  data::TokenizedExample ex;
  ex.input_ids = {1, 2, 3, 4};
  ex.labels = {-100, 2, 3, 4};
  ex.query_len = 1;
  ex.k_begin = 2;
  ex.k_end = 3;
  const std::string h = train::hash_examples({ex});
  for (int field = 0; field < 4; ++field) {
    auto e = ex;
    if (field == 0) e.labels[1] = -100;
    if (field == 1) e.k_end = 4;
    if (field == 2) e.unsafe = 1;
    if (field == 3) e.source = "elsewhere.jsonl:1";  // provenance only: the same example
    EXPECT_EQ(train::hash_examples({e}) == h, field == 3) << "field " << field;
  }
}

}  // namespace
