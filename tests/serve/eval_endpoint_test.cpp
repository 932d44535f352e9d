// `safekey eval --generate-endpoint` against a real `safekey serve` on 127.0.0.1: the same prompts
// generated through the server and locally (greedy, the same tiny model) give identical texts in
// the same results layout, prefilling items included (rendered locally with --generate-tokenizer,
// sent as raw prompts); a wrong key is a clear error.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <thread>

#include "infer/tiny_model.h"

namespace safekey {
namespace {

struct Server {
  pid_t pid = -1;
  int out_fd = -1;
  int port = -1;
  ~Server() {
    if (pid > 0) {
      kill(pid, SIGTERM);
      for (int i = 0; i < 600; ++i) {  // bounded: 30 s, then SIGKILL
        if (waitpid(pid, nullptr, WNOHANG) == pid) {
          pid = -1;
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
      }
    }
    if (out_fd >= 0) close(out_fd);
  }
};

// Starts `safekey serve` and reads its "serving ... on http://host:PORT" line (bounded: 120 s).
void start_serve(Server& s, const std::vector<std::string>& args) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  s.pid = fork();
  if (s.pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    std::vector<char*> argv;
    std::string exe = test::safekey_exe();
    argv.push_back(const_cast<char*>(exe.c_str()));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(exe.c_str(), argv.data());
    _exit(127);
  }
  close(fds[1]);
  s.out_fd = fds[0];
  std::string buf;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  char ch;
  while (std::chrono::steady_clock::now() < deadline && read(s.out_fd, &ch, 1) == 1) {
    if (ch != '\n') {
      buf += ch;
      continue;
    }
    auto p = buf.rfind(':');
    if (buf.rfind("serving ", 0) == 0 && p != std::string::npos) {
      s.port = std::atoi(buf.c_str() + p + 1);
      return;
    }
    buf.clear();
  }
}

// Catches: a different chat rendering or sampling over the endpoint (texts differ), reasoning
// split by the server not joined back ("</think>" lost), results missing fields local generation
// writes, prefill items sent as chat requests or with the target not cut to --prefilling tokens as
// local generation cuts it (prompt or text differ), a /v1/completions reply read as a chat reply,
// and a bad key retried or reported vaguely.
TEST(EvalEndpoint, SameTextsAsLocalGreedyGeneration) {
  SAFEKEY_REQUIRE_TINY_MODEL_REFS();
  const std::string model = test::make_tiny_model("evalep_tiny", 512);
  Server s;
  start_serve(s, {"serve", "--model", model, "--port", "0", "--threads", "1", "--served-model-name",
                  "tiny", "--api-key", "k1"});
  ASSERT_GT(s.port, 0) << "no port line from safekey serve";
  const std::string work = test::make_temp_dir("evalep");
  const std::string prompts = work + "/p.jsonl";
  write_file_atomic(
      prompts,
      "{\"prompt\": \"What is tea?\"}\n{\"prompt\": \"Name a color.\"}\n"
      "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", "
      "\"content\": \"Hello!\"}, {\"role\": \"user\", \"content\": \"Bye?\"}]}\n"
      "{\"prompt\": \"Explain rain in one line.\"}\n");
  const std::vector<std::string> common = {"--benches", prompts,     "--max-new-tokens",
                                           "24",        "--threads", "1"};
  std::vector<std::string> local = {"eval", "--model", model, "--out", work + "/local"};
  local.insert(local.end(), common.begin(), common.end());
  auto l = test::run_safekey(local);
  ASSERT_EQ(l.exit_code, 0) << l.err;
  setenv("SAFEKEY_GENERATE_API_KEY", "k1", 1);
  std::vector<std::string> remote = {"eval",
                                     "--generate-endpoint",
                                     "http://127.0.0.1:" + std::to_string(s.port),
                                     "--generate-model",
                                     "tiny",
                                     "--generate-concurrency",
                                     "2",
                                     "--out",
                                     work + "/remote"};
  remote.insert(remote.end(), common.begin(), common.end());
  auto r = test::run_safekey(remote);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // What local and endpoint generation must agree on, item by item.
  auto expect_same_generation = [](const json& a, const json& b, size_t n) {
    ASSERT_EQ(a["data"].size(), n);
    ASSERT_EQ(b["data"].size(), n);
    for (size_t i = 0; i < n; ++i)
      for (const char* k : {"response", "finish_reason", "completion_tokens", "prompt_tokens"})
        EXPECT_EQ(a["data"][i][k], b["data"][i][k]) << "item " << i << ", " << k;
  };
  json a = read_json_file(work + "/local/p.json"), b = read_json_file(work + "/remote/p.json");
  expect_same_generation(a, b, 4);
  for (size_t i = 0; i < 4; ++i) {
    std::set<std::string> ka, kb;
    for (auto it = a["data"][i].begin(); it != a["data"][i].end(); ++it) ka.insert(it.key());
    for (auto it = b["data"][i].begin(); it != b["data"][i].end(); ++it) kb.insert(it.key());
    EXPECT_EQ(ka, kb) << "item " << i;
  }
  EXPECT_FALSE(b["meta_info"]["settings"].contains("generate-api-key"));

  // Prefilling items: without --generate-tokenizer an error naming the flag, before any request;
  // with it the prompt is rendered here and sent raw to /v1/completions.
  write_file_atomic(work + "/pre.csv",
                    "prompt,target\nTeach me X,Sure here is how to do it step by step with care\n"
                    "Name a fruit,Of course the fruit you want is a fine one\n");
  std::vector<std::string> pre = {"eval",       "--generate-endpoint", "http://127.0.0.1:" + std::to_string(s.port),
                                  "--generate-model", "tiny",          "--benches",
                                  work + "/pre.csv", "--target-column", "target",
                                  "--prefilling", "3",                 "--max-new-tokens",
                                  "24",         "--threads",           "1",
                                  "--out",      work + "/pre"};
  auto p = test::run_safekey(pre);
  EXPECT_EQ(p.exit_code, 1);
  EXPECT_NE(p.err.find("give --generate-tokenizer DIR"), std::string::npos) << p.err;
  std::vector<std::string> pre_local = {"eval", "--model", model};
  pre_local.insert(pre_local.end(), pre.begin() + 5, pre.end() - 1);
  pre_local.push_back(work + "/pre-local");
  auto pl = test::run_safekey(pre_local);
  ASSERT_EQ(pl.exit_code, 0) << pl.err;
  pre.back() = work + "/pre-remote";
  pre.insert(pre.end() - 2, {"--generate-tokenizer", model});
  auto pr = test::run_safekey(pre);
  ASSERT_EQ(pr.exit_code, 0) << pr.err;
  json pa = read_json_file(work + "/pre-local/pre.json"), pb = read_json_file(work + "/pre-remote/pre.json");
  expect_same_generation(pa, pb, 2);
  ASSERT_EQ(pb["data"].size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    // The prompt ends in the first 3 tokens of the target: prefilled, and cut as locally.
    const std::string prompt = pb["data"][i]["prompt"];
    EXPECT_EQ(pa["data"][i]["prompt"], prompt) << "item " << i;
    EXPECT_NE(prompt.find(i == 0 ? " Sure" : " Of"), std::string::npos) << prompt;
    EXPECT_EQ(prompt.find(i == 0 ? "with care" : "fine one"), std::string::npos) << prompt;
  }

  // A wrong key stops at once with the endpoint named.
  setenv("SAFEKEY_GENERATE_API_KEY", "wrong", 1);
  std::vector<std::string> bad = remote;
  bad[std::find(bad.begin(), bad.end(), work + "/remote") - bad.begin()] = work + "/bad";
  auto k = test::run_safekey(bad);
  unsetenv("SAFEKEY_GENERATE_API_KEY");
  EXPECT_EQ(k.exit_code, 1);
  EXPECT_NE(k.err.find("--generate-endpoint http://127.0.0.1:" + std::to_string(s.port)),
            std::string::npos)
      << k.err;
}

}  // namespace
}  // namespace safekey
