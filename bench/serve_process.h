// `safekey serve` as a child process for the load client (bench/serve_load.h): start it with
// --port 0 and read the port from its "serving ... on http://HOST:PORT" line; stop it with SIGTERM,
// every wait bounded.
#pragma once
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "safekey/util/error.h"

namespace safekey::load {

struct ServerChild {
  pid_t pid = -1;
  int out_fd = -1;
  int port = -1;
};

// Starts `exe serve ARGS... --port 0` with stdout on a pipe (stderr inherited) and reads its
// "serving NAME on http://HOST:PORT (...)" line, waiting at most `wait_s`.
inline ServerChild start_server(const std::string& exe, std::vector<std::string> args,
                                double wait_s = 120) {
  int fds[2];
  SK_CHECK(pipe(fds) == 0, "pipe failed");
  ServerChild c;
  c.pid = fork();
  SK_CHECK(c.pid >= 0, "fork failed");
  if (c.pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    std::vector<char*> argv{const_cast<char*>(exe.c_str())};
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(exe.c_str(), argv.data());
    _exit(127);
  }
  close(fds[1]);
  c.out_fd = fds[0];
  std::string line;
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(wait_s * 1000));
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{c.out_fd, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    char ch;
    if (read(c.out_fd, &ch, 1) != 1) break;  // the child exited
    if (ch != '\n') {
      line += ch;
      continue;
    }
    const size_t at = line.find(" on http://");
    if (line.rfind("serving ", 0) == 0 && at != std::string::npos) {
      const size_t colon = line.find(':', at + 11);
      if (colon != std::string::npos) c.port = std::atoi(line.c_str() + colon + 1);
      break;
    }
    line.clear();
  }
  return c;
}

// SIGTERM, then up to `wait_s` for the exit (SIGKILL after); returns the exit status (-1: killed).
inline int stop_server(ServerChild& c, double wait_s = 30) {
  if (c.pid <= 0) return -1;
  kill(c.pid, SIGTERM);
  int code = -1;
  for (int i = 0; i < static_cast<int>(wait_s * 20); ++i) {
    int st = 0;
    if (waitpid(c.pid, &st, WNOHANG) == c.pid) {
      code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (code == -1) {
    kill(c.pid, SIGKILL);
    waitpid(c.pid, nullptr, 0);
  }
  if (c.out_fd >= 0) close(c.out_fd);
  c.pid = -1;
  return code;
}

}  // namespace safekey::load
