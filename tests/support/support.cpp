#include "support/support.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "safekey/util/error.h"
#include "safekey/util/file.h"

namespace safekey::test {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

std::string shared_dir() { return env_or("SAFEKEY_SHARED_DIR", std::string(SAFEKEY_SOURCE_DIR) + "/../shared"); }
std::string golden_dir() { return env_or("SAFEKEY_GOLDEN_DIR", shared_dir() + "/golden"); }
std::string tokref_dir() {
  return env_or("SAFEKEY_TOKREF_DIR", std::string(SAFEKEY_SOURCE_DIR) + "/build/tokref");
}
std::string safekey_exe() { return env_or("SAFEKEY_EXE", SAFEKEY_EXE); }

std::string make_temp_dir(const std::string& tag) {
  static std::atomic<int> n{0};
  std::string base = std::string(SAFEKEY_BINARY_DIR) + "/test-tmp";
  make_dirs(base);
  std::string dir = cat(base, "/", tag, "-", ::getpid(), "-", n++);
  if (path_exists(dir)) std::system(("rm -rf '" + dir + "'").c_str());
  make_dirs(dir);
  return dir;
}

RunResult run_process(const std::vector<std::string>& argv, const std::string& stdin_data) {
  int in_pipe[2], out_pipe[2], err_pipe[2];
  SK_CHECK(pipe(in_pipe) == 0 && pipe(out_pipe) == 0 && pipe(err_pipe) == 0, "pipe failed");
  pid_t pid = fork();
  SK_CHECK(pid >= 0, "fork failed");
  if (pid == 0) {
    dup2(in_pipe[0], 0);
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    for (int fd : {in_pipe[0], in_pipe[1], out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) close(fd);
    std::vector<char*> cargv;
    for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);
    execvp(cargv[0], cargv.data());
    _exit(127);
  }
  close(in_pipe[0]);
  close(out_pipe[1]);
  close(err_pipe[1]);
  // Feed stdin and drain both outputs without deadlocking.
  size_t written = 0;
  if (stdin_data.empty()) close(in_pipe[1]);
  fcntl(in_pipe[1], F_SETFL, O_NONBLOCK);
  RunResult r;
  bool out_open = true, err_open = true, in_open = !stdin_data.empty();
  char buf[65536];
  while (out_open || err_open) {
    std::vector<pollfd> fds;
    if (out_open) fds.push_back({out_pipe[0], POLLIN, 0});
    if (err_open) fds.push_back({err_pipe[0], POLLIN, 0});
    if (in_open) fds.push_back({in_pipe[1], POLLOUT, 0});
    if (poll(fds.data(), fds.size(), -1) < 0) continue;
    for (auto& p : fds) {
      if (p.fd == in_pipe[1] && (p.revents & (POLLOUT | POLLERR | POLLHUP))) {
        ssize_t w = write(in_pipe[1], stdin_data.data() + written, stdin_data.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        if (w < 0 || written == stdin_data.size()) {
          close(in_pipe[1]);
          in_open = false;
        }
      } else if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
        ssize_t n = read(p.fd, buf, sizeof buf);
        std::string& dst = p.fd == out_pipe[0] ? r.out : r.err;
        if (n > 0) {
          dst.append(buf, static_cast<size_t>(n));
        } else {
          if (p.fd == out_pipe[0]) out_open = false;
          else err_open = false;
        }
      }
    }
  }
  if (in_open) close(in_pipe[1]);
  close(out_pipe[0]);
  close(err_pipe[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

RunResult run_safekey(const std::vector<std::string>& args) {
  std::vector<std::string> argv{safekey_exe()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv);
}

}  // namespace safekey::test
