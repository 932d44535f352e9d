// `safekey serve` as a real process: it prints its port, answers over HTTP, and exits 0 on SIGTERM
// (and on SIGINT) after finishing the request that is running.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "infer/tiny_model.h"

namespace safekey {
namespace {

struct Child {
  pid_t pid = -1;
  int out_fd = -1;
};

// Starts `safekey serve ...` with stdout on a pipe (stderr inherited).
Child spawn_serve(const std::vector<std::string>& args) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  Child c;
  c.pid = fork();
  if (c.pid == 0) {
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
  c.out_fd = fds[0];
  return c;
}

// Reads stdout until the "serving ... on http://host:PORT" line (bounded: 120 s).
int read_port(const Child& c) {
  std::string buf;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  char ch;
  while (std::chrono::steady_clock::now() < deadline) {
    ssize_t n = read(c.out_fd, &ch, 1);
    if (n <= 0) return -1;
    if (ch != '\n') {
      buf += ch;
      continue;
    }
    auto p = buf.rfind(':');
    if (buf.rfind("serving ", 0) == 0 && p != std::string::npos) return std::atoi(buf.c_str() + p + 1);
    buf.clear();
  }
  return -1;
}

// waitpid with a deadline; returns the exit status or -1 (then kills the child).
int wait_exit(pid_t pid, int seconds) {
  for (int i = 0; i < seconds * 20; ++i) {
    int st = 0;
    if (waitpid(pid, &st, WNOHANG) == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return -1;
}

class ServeCli : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override { SAFEKEY_REQUIRE_TINY_MODEL_REFS(); }
};

TEST_P(ServeCli, AnswersAndShutsDownGracefullyOnSignal) {
  std::string dir = test::make_tiny_model("servecli_tiny", 512);
  Child c = spawn_serve({"serve", "--model", dir, "--port", "0", "--threads", "1", "--served-model-name",
                         "tiny", "--api-key", "k1"});
  ASSERT_GT(c.pid, 0);
  int port = read_port(c);
  ASSERT_GT(port, 0) << "no port line from safekey serve";
  httplib::Client cl("127.0.0.1", port);
  cl.set_bearer_token_auth("k1");
  cl.set_read_timeout(60);
  auto m = cl.Get("/v1/models");
  ASSERT_TRUE(m);
  EXPECT_EQ(json::parse(m->body)["data"][0]["id"], "tiny");
  // A request that is running when the signal comes still completes.
  int status = 0;
  std::string finish;
  std::thread t([&] {
    httplib::Client c2("127.0.0.1", port);
    c2.set_bearer_token_auth("k1");
    c2.set_read_timeout(60);
    json body = {{"model", "tiny"}, {"messages", {{{"role", "user"}, {"content", "hello"}}}},
                 {"max_tokens", 200}, {"temperature", 0}, {"ignore_eos", true}};
    auto r = c2.Post("/v1/chat/completions", body.dump(), "application/json");
    if (r) {
      status = r->status;
      finish = json::parse(r->body)["choices"][0]["finish_reason"];
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  kill(c.pid, GetParam());
  t.join();
  EXPECT_EQ(wait_exit(c.pid, 60), 0);
  close(c.out_fd);
  EXPECT_EQ(status, 200);
  EXPECT_EQ(finish, "length");
}

INSTANTIATE_TEST_SUITE_P(Signals, ServeCli, ::testing::Values(SIGTERM, SIGINT));

TEST(ServeCliArgs, BadFlagsAreClearErrors) {
  auto r = test::run_safekey({"serve", "--model", "/nonexistent/model", "--port", "0"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("error:"), std::string::npos) << r.err;
  auto r2 = test::run_safekey({"serve", "--model", "/x", "--reasoning-parser", "qwen9"});
  EXPECT_EQ(r2.exit_code, 1);
  EXPECT_NE(r2.err.find("--reasoning-parser"), std::string::npos) << r2.err;
}

// --lora-modules: a malformed entry and a missing adapter folder end the command with an error naming
// the flag or the folder, before anything listens. Catches: a bad entry silently skipped or serving
// the base under the adapter's name.
TEST(ServeCliArgs, BadLoraModulesAreClearErrors) {
  SAFEKEY_REQUIRE_TINY_MODEL_REFS();
  const std::string dir = test::make_tiny_model("serve_lora_bad", 128);
  auto r = test::run_safekey({"serve", "--model", dir, "--port", "0", "--lora-modules", "noequals"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--lora-modules: expected name=DIR, got 'noequals'"), std::string::npos) << r.err;
  auto r2 = test::run_safekey({"serve", "--model", dir, "--port", "0", "--lora-modules", "a=/nonexistent/adapter"});
  EXPECT_EQ(r2.exit_code, 1);
  EXPECT_NE(r2.err.find("/nonexistent/adapter"), std::string::npos) << r2.err;
}

}  // namespace
}  // namespace safekey
