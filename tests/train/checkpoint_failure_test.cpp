// Checkpoint writing when the output refuses writes, through save_checkpoint itself (a tiny model,
// its safety head and optimizer after one step):
//   * a write failing in the middle of a file, at each file of the checkpoint in turn: the file-size
//     limit (RLIMIT_FSIZE, SIGXFSZ ignored) makes write() return EFBIG once a file reaches it, the
//     way a full disk fails a write part-way (tests/train/disk_full_test.cpp runs the whole trainer
//     on a real full tmpfs);
//   * a read-only output folder (a tmpfs remounted read-only in a private user + mount namespace:
//     as root, permission bits alone would not stop the writes).
// Each time: the save throws an Error naming the checkpoint and the cause; no checkpoint-N and no
// temp folder is left; the latest-checkpoint lookup (list_checkpoints, what --resume uses) still
// finds the previous checkpoint, byte for byte as it was, and its weights load. The lookup also
// passes over what a killed save can leave behind.
// A wrong implementation each part catches: one that renames the temp folder before every file is
// written or ignores a short write (a truncated checkpoint would be listed), one that writes in place
// (a checkpoint-N without trainer_state.json, or a damaged previous one), one that leaves the temp
// folder behind, or a lookup that trusts any folder named checkpoint-N.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <set>

#include "safekey/model/decoder.h"
#include "safekey/train/checkpoint.h"
#include "safekey/train/optim.h"
#include "safekey/util/error.h"
#include "safekey/util/file.h"
#include "support/support.h"
#include "train/tiny.h"

using namespace safekey;
namespace fs = std::filesystem;

namespace {

// A tiny model, its safety head and an AdamW that has taken one step (so the state has moments).
struct TinyRun {
  std::string model_dir;
  model::DecoderModel model{nullptr};
  train::SafetyHead head{nullptr};
  std::unique_ptr<train::AdamW> opt;

  explicit TinyRun(const std::string& dir) : model_dir(dir) {
    if (!path_exists(dir + "/config.json")) test::make_tiny_model(dir);
    model = model::load_model(dir);
    head = train::SafetyHead(model->config().hidden_size);
    opt = std::make_unique<train::AdamW>(train::make_param_groups(model, &head, 0.01, false),
                                         train::AdamWOptions{});
    torch::manual_seed(3);
    for (auto& p : model->parameters()) p.mutable_grad() = torch::randn_like(p) * 0.01;
    for (auto& p : head->parameters()) p.mutable_grad() = torch::randn_like(p) * 0.01;
    opt->step(1e-3);
    opt->zero_grad();
  }

  std::string save(const std::string& out, int64_t step) {
    train::TrainerState s;
    s.global_step = step;
    s.total_steps = 100;
    s.epoch_order = {2, 0, 1};
    s.torch_rng_state = train::get_torch_rng_state();
    s.config = json{{"run", "checkpoint_failure_test"}};
    return train::save_checkpoint(out, model, &head, *opt, s, model_dir);
  }
};

// Every regular file under `dir` (relative path -> content).
std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) files[fs::relative(e.path(), dir).string()] = read_file(e.path().string());
  return files;
}

std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

using test::error_of;

// A file-size limit for this process (every thread), lifted again on scope exit. With SIGXFSZ
// ignored, a write that would pass the limit writes what fits and the next one fails with EFBIG.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    getrlimit(RLIMIT_FSIZE, &old_);
    old_handler_ = signal(SIGXFSZ, SIG_IGN);
    rlimit l = old_;
    l.rlim_cur = bytes;
    ok_ = setrlimit(RLIMIT_FSIZE, &l) == 0;
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &old_);
    signal(SIGXFSZ, old_handler_);
  }
  bool ok() const { return ok_; }

 private:
  rlimit old_{};
  sighandler_t old_handler_ = SIG_DFL;
  bool ok_ = false;
};

// Removes the test's folder at the end, whatever happened.
struct RemoveAtExit {
  std::string dir;
  ~RemoveAtExit() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// The checks after a failed save of checkpoint-`step` into `out`, whose only checkpoint is `first`
// with the files `before`.
void expect_only_previous(const std::string& out, const std::string& first,
                          const std::map<std::string, std::string>& before, int64_t step) {
  EXPECT_EQ(train::list_checkpoints(out), std::vector<std::string>{first});
  EXPECT_FALSE(path_exists(cat(out, "/checkpoint-", step))) << "a checkpoint folder of the failed save";
  for (const auto& n : entries(out)) EXPECT_NE(n.rfind(".tmp-", 0), 0u) << "a temp folder left: " << n;
  EXPECT_EQ(train::read_trainer_state(first).global_step, 1);
  EXPECT_TRUE(snapshot(first) == before) << "the previous checkpoint changed";
}

}  // namespace

TEST(CheckpointFailure, WriteFailingMidFileAtEachFileKeepsThePreviousCheckpoint) {
  const std::string dir = test::make_temp_dir("ckpt_fsize");
  RemoveAtExit cleanup{dir};
  TinyRun run(dir + "/model");
  const std::string out = dir + "/out";
  const std::string first = run.save(out, 1);
  const auto before = snapshot(first);
  ASSERT_TRUE(before.count("trainer_state.json"));
  ASSERT_TRUE(before.count("optimizer.safetensors"));
  ASSERT_TRUE(before.count("safety_head.safetensors"));

  // Limits at half of each file's size and one byte short of it: the save fails inside the first
  // file (in the order it writes them) that is larger, so each file that is the largest so far
  // gets to be the one cut short, at several points in it.
  std::set<rlim_t> limits = {1};
  for (const auto& [name, data] : before)
    if (data.size() > 1) limits.insert({data.size() / 2, data.size() - 1});
  int64_t step = 2;
  std::set<std::string> failed_in;  // the files that were cut short
  for (rlim_t limit : limits) {
    SCOPED_TRACE(cat("file-size limit ", limit, " bytes"));
    std::string err;
    {
      FileSizeLimit lim(limit);
      ASSERT_TRUE(lim.ok());
      err = error_of([&] { run.save(out, step); });
    }
    ASSERT_FALSE(err.empty()) << "the save went through";
    EXPECT_TRUE(has(err, cat("checkpoint-", step, " failed"))) << err;
    EXPECT_TRUE(has(err, "File too large")) << err;
    EXPECT_TRUE(has(err, "the previous checkpoints are intact")) << err;
    for (const auto& [name, data] : before)
      if (has(err, "/" + fs::path(name).filename().string())) failed_in.insert(name);
    expect_only_previous(out, first, before, step);
    ++step;
  }
  // The model weights are written first and are the largest file until the optimizer state: those
  // two are the files a size limit can cut short.
  EXPECT_EQ(failed_in, (std::set<std::string>{"model/model.safetensors", "optimizer.safetensors"}));

  // With room again the next save works, and the previous checkpoint's weights load.
  const std::string next = run.save(out, step);
  EXPECT_EQ(train::list_checkpoints(out), (std::vector<std::string>{first, next}));
  TinyRun fresh(dir + "/model");
  train::load_checkpoint_weights(first, fresh.model, &fresh.head, *fresh.opt);
  auto a = run.model->named_parameters(), b = fresh.model->named_parameters();
  for (const auto& p : a) EXPECT_TRUE(torch::equal(p.value(), b[p.key()])) << p.key();
}

TEST(CheckpointFailure, LookupPassesOverWhatAKilledSaveLeaves) {
  const std::string dir = test::make_temp_dir("ckpt_partial");
  RemoveAtExit cleanup{dir};
  TinyRun run(dir + "/model");
  const std::string out = dir + "/out";
  const std::string first = run.save(out, 1);
  // Killed after trainer_state.json but before the rename: a complete-looking temp folder.
  fs::copy(first, out + "/.tmp-checkpoint-5", fs::copy_options::recursive);
  // A checkpoint folder without its trainer_state.json (copied in part, say), and a file.
  fs::copy(first, out + "/checkpoint-7", fs::copy_options::recursive);
  fs::remove(out + "/checkpoint-7/trainer_state.json");
  write_file_atomic(out + "/checkpoint-8", "not a folder");
  EXPECT_EQ(train::list_checkpoints(out), std::vector<std::string>{first});
  train::rotate_checkpoints(out, 0);  // what a run does after each save: stale temp folders go
  EXPECT_FALSE(path_exists(out + "/.tmp-checkpoint-5"));
  EXPECT_EQ(train::list_checkpoints(out), std::vector<std::string>{first});
}

// The read-only case runs in a child: `unshare -rm` gives it a private mount namespace in which a
// tmpfs holding a copy of the output folder is remounted read-only. The child is this test program
// again, running only CheckpointFailureChild.SaveIntoReadOnlyOutput.
TEST(CheckpointFailure, ReadOnlyOutputFailsClearlyAndKeepsThePreviousCheckpoint) {
  if (test::run_process({"unshare", "-rm", "true"}).exit_code != 0)
    GTEST_SKIP() << "unshare -rm (user + mount namespaces) is not available here, so no read-only folder "
                    "can be made (as root, permission bits are not enforced)";
  const std::string dir = test::make_temp_dir("ckpt_ro");
  RemoveAtExit cleanup{dir};
  TinyRun run(dir + "/model");
  run.save(dir + "/out", 1);
  char self[4096];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  ASSERT_GT(n, 0);
  self[n] = 0;
  const std::string mnt = dir + "/mnt";
  make_dirs(mnt);
  const std::string script =
      "set -e\nmount -t tmpfs -o size=64m tmpfs '" + mnt + "' || exit 99\ncp -a '" + dir + "/out' '" + mnt +
      "/out'\nmount -o remount,ro '" + mnt + "' || exit 98\nexport SAFEKEY_CKPT_RO_OUT='" + mnt +
      "/out' SAFEKEY_CKPT_RO_MODEL='" + dir + "/model'\nexec '" + self +
      "' --gtest_filter=CheckpointFailureChild.SaveIntoReadOnlyOutput\n";
  auto r = test::run_process({"timeout", "300", "unshare", "-rm", "sh", "-c", script});
  ASSERT_NE(r.exit_code, 99) << "could not mount a tmpfs: " << r.err;
  ASSERT_NE(r.exit_code, 98) << "could not remount the tmpfs read-only: " << r.err;
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "[  PASSED  ] 1 test")) << r.out;
  EXPECT_FALSE(has(r.out, "SKIPPED")) << r.out;
}

TEST(CheckpointFailureChild, SaveIntoReadOnlyOutput) {
  const char* out_env = std::getenv("SAFEKEY_CKPT_RO_OUT");
  const char* model_env = std::getenv("SAFEKEY_CKPT_RO_MODEL");
  if (!out_env || !model_env)
    GTEST_SKIP() << "run by CheckpointFailure.ReadOnlyOutputFailsClearlyAndKeepsThePreviousCheckpoint";
  const std::string out = out_env;
  const std::string first = out + "/checkpoint-1";
  const auto before = snapshot(first);
  TinyRun run(model_env);
  const std::string err = error_of([&] { run.save(out, 2); });
  EXPECT_TRUE(has(err, "checkpoint-2 failed")) << err;
  EXPECT_TRUE(has(err, "Read-only file system")) << err;
  EXPECT_TRUE(has(err, "the previous checkpoints are intact")) << err;
  expect_only_previous(out, first, before, 2);
  // A new folder under the read-only one: the save cannot even make it.
  const std::string err2 = error_of([&] { run.save(out + "/sub", 2); });
  EXPECT_TRUE(has(err2, "Read-only file system")) << err2;
  EXPECT_TRUE(train::list_checkpoints(out + "/sub").empty());
  // The previous checkpoint still loads.
  TinyRun fresh(model_env);
  train::load_checkpoint_weights(first, fresh.model, &fresh.head, *fresh.opt);
  EXPECT_EQ(train::read_trainer_state(train::list_checkpoints(out).back()).global_step, 1);
}
