// Disk full while a checkpoint is being written: a real `safekey train` process runs on a small
// tmpfs (mounted in a private user + mount namespace with `unshare -rm`, so no privileges are
// needed) that holds one checkpoint but not two. The second save fails with ENOSPC: the run stops with
// an error naming the checkpoint and the cause, the previous checkpoint is intact (byte-identical to
// an unconstrained run's), no partial checkpoint is left, and a resume from it finishes the run.
#include <gtest/gtest.h>

#include <filesystem>

#include "safekey/train/checkpoint.h"
#include "safekey/train/metrics.h"
#include "safekey/util/file.h"
#include "support/support.h"
#include "train/tiny.h"

using namespace safekey;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> train_args(const std::string& model, const std::string& data, const std::string& out) {
  return {"train", "--model", model, "--data", data, "--output-dir", out, "--num-train-epochs", "2",
          "--per-device-train-batch-size", "2", "--gradient-accumulation-steps", "1", "--learning-rate", "1e-3",
          "--key-sentence-prediction", "--safety-head", "--last-k-epoch", "1", "--save-steps", "5",
          "--threads", "1"};
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

uintmax_t dir_bytes(const std::string& dir) {
  uintmax_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) n += e.file_size();
  return n;
}

}  // namespace

TEST(Checkpoint, DiskFullWhileSavingKeepsThePreviousCheckpoint) {
  if (test::run_process({"unshare", "-rm", "true"}).exit_code != 0)
    GTEST_SKIP() << "unshare -rm (user + mount namespaces) is not available here";
  const std::string dir = test::make_temp_dir("disk_full");
  const std::string model = test::make_tiny_model(dir + "/model");
  const std::string data = test::make_tiny_data(dir + "/data.jsonl", 20);

  // The unconstrained run: 10 steps per epoch, checkpoints at steps 5, 10, 15, 20.
  auto a = test::run_safekey(train_args(model, data, dir + "/a"));
  ASSERT_EQ(a.exit_code, 0) << a.err;
  const uintmax_t ckpt = dir_bytes(dir + "/a/checkpoint-5");
  ASSERT_GT(ckpt, 100u * 1024) << "the checkpoint is too small for a page-granular tmpfs test";

  // The same run on a tmpfs with room for one checkpoint and a half (plus the run's small files).
  const std::string mnt = dir + "/mnt", copy = dir + "/b";
  make_dirs(mnt);
  std::string cmd;
  for (const auto& s : train_args(model, data, mnt + "/b")) cmd += " " + shell_quote(s);
  const uintmax_t kib = (ckpt * 3 / 2 + 48 * 1024) / 1024;
  const std::string script = "mount -t tmpfs -o size=" + std::to_string(kib) + "k tmpfs " + shell_quote(mnt) +
                             " || exit 99\n" + shell_quote(test::safekey_exe()) + cmd + " 2>" +
                             shell_quote(dir + "/b.err") + "\necho $? >" + shell_quote(dir + "/b.rc") +
                             "\ncp -a " + shell_quote(mnt + "/b") + " " + shell_quote(copy) + "\n";
  auto b = test::run_process({"unshare", "-rm", "sh", "-c", script});
  ASSERT_NE(b.exit_code, 99) << "could not mount a tmpfs: " << b.err;
  ASSERT_EQ(b.exit_code, 0) << b.err;
  const std::string err = read_file(dir + "/b.err");
  EXPECT_EQ(read_file(dir + "/b.rc"), "1\n") << err;
  EXPECT_NE(err.find("checkpoint-10 failed"), std::string::npos) << err;
  EXPECT_NE(err.find("No space left on device"), std::string::npos) << err;
  EXPECT_NE(err.find("the previous checkpoints are intact"), std::string::npos) << err;

  // checkpoint-5 is complete and identical to the unconstrained run's; nothing partial is left.
  const auto ckpts = train::list_checkpoints(copy);
  ASSERT_EQ(ckpts.size(), 1u);
  EXPECT_EQ(fs::path(ckpts[0]).filename().string(), "checkpoint-5");
  for (const char* f : {"model/model.safetensors", "optimizer.safetensors", "safety_head.safetensors"})
    EXPECT_TRUE(read_file(ckpts[0] + "/" + f) == read_file(dir + "/a/checkpoint-5/" + f)) << f;
  EXPECT_EQ(train::read_trainer_state(ckpts[0]).global_step, 5);
  for (const auto& e : fs::directory_iterator(copy))
    EXPECT_NE(e.path().filename().string().rfind(".tmp-", 0), 0u) << e.path();

  // With room again, --resume finishes the run exactly as the unconstrained one did.
  auto args = train_args(model, data, copy);
  args.push_back("--resume");
  auto r = test::run_safekey(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto full = train::read_metrics(dir + "/a/metrics.jsonl");
  const auto resumed = train::read_metrics(copy + "/metrics.jsonl");
  ASSERT_EQ(resumed.size(), full.size());
  for (size_t i = 0; i < full.size(); ++i) EXPECT_EQ(resumed[i].loss, full[i].loss) << "step " << i + 1;
}
