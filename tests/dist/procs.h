// Real processes for the distributed tests: spawn with extra environment variables (output to a log
// file), wait with a deadline (the process group is killed when it passes, so no test can hang), and
// read the log.
#pragma once
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "safekey/util/file.h"

namespace safekey::test {

using EnvVars = std::vector<std::pair<std::string, std::string>>;

struct Proc {
  pid_t pid = -1;
  std::string log;
  int status = -1;
  std::string output() const { return path_exists(log) ? read_file(log) : ""; }
  bool exited_ok() const { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }
};

// Starts argv[0] (PATH search) in its own process group with `env` added to this environment.
// Variables with an empty value are removed.
inline Proc spawn_proc(const std::vector<std::string>& argv, const EnvVars& env, const std::string& log) {
  Proc p;
  p.log = log;
  p.pid = fork();
  if (p.pid == 0) {
    setpgid(0, 0);
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    for (const auto& [k, v] : env) {
      if (v.empty()) unsetenv(k.c_str());
      else setenv(k.c_str(), v.c_str(), 1);
    }
    std::vector<char*> a;
    for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    execvp(a[0], a.data());
    _exit(127);
  }
  return p;
}

// Waits for p; past the deadline the whole process group gets SIGKILL. Returns false on timeout.
inline bool wait_proc(Proc& p, double timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  for (;;) {
    int st = 0;
    if (waitpid(p.pid, &st, WNOHANG) == p.pid) {
      p.status = st;
      return true;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      kill(-p.pid, SIGKILL);
      waitpid(p.pid, &st, 0);
      p.status = st;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

// The torchrun variables of rank `rank` in a world of `world` on this machine.
inline EnvVars rank_env(int rank, int world, int port) {
  return {{"RANK", std::to_string(rank)},        {"LOCAL_RANK", std::to_string(rank)},
          {"WORLD_SIZE", std::to_string(world)}, {"LOCAL_WORLD_SIZE", std::to_string(world)},
          {"MASTER_ADDR", "127.0.0.1"},          {"MASTER_PORT", std::to_string(port)}};
}

}  // namespace safekey::test
