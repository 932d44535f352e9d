#include "safekey/dist/launcher.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "safekey/util/error.h"

namespace safekey::dist {

namespace {

using Clock = std::chrono::steady_clock;

volatile sig_atomic_t g_signal = 0;
void on_signal(int sig) { g_signal = sig; }

struct Stream {
  int fd = -1;
  std::string partial;
  bool to_stderr = false;
};

struct Rank {
  int rank = 0;
  pid_t pid = -1;
  bool running = true;
  int status = 0;
  Stream out, err;
};

std::string describe_status(int status) {
  if (WIFEXITED(status)) return cat("exited with status ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int s = WTERMSIG(status);
    const char* name = sigabbrev_np(s);
    return cat("was killed by signal ", s, name ? cat(" (SIG", name, ")") : std::string());
  }
  return cat("ended with wait status ", status);
}

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

void emit(const std::string& prefix, const std::string& line, bool to_stderr) {
  std::ostream& os = to_stderr ? std::cerr : std::cout;
  os << prefix << line << '\n';
  os.flush();
}

// Copies whatever the rank wrote; whole lines get the prefix. Returns false at end of file.
bool drain(Stream& s, const std::string& prefix) {
  char buf[65536];
  for (;;) {
    const ssize_t n = read(s.fd, buf, sizeof buf);
    if (n > 0) {
      s.partial.append(buf, static_cast<size_t>(n));
      size_t start = 0, nl;
      while ((nl = s.partial.find('\n', start)) != std::string::npos) {
        emit(prefix, s.partial.substr(start, nl - start), s.to_stderr);
        start = nl + 1;
      }
      s.partial.erase(0, start);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
    if (!s.partial.empty()) emit(prefix, s.partial, s.to_stderr);
    s.partial.clear();
    close(s.fd);
    s.fd = -1;
    return false;
  }
}

pid_t spawn_rank(const LaunchOptions& o, int local_rank, int out_fd, int err_fd, int threads,
                 const std::vector<std::string>& argv) {
  const pid_t parent = getpid();
  const pid_t pid = fork();
  SK_CHECK(pid >= 0, "launch: fork failed: ", std::strerror(errno));
  if (pid > 0) return pid;
  // The child: its own process group (the launcher forwards signals), dies with the launcher.
  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) _exit(1);
  dup2(out_fd, 1);
  dup2(err_fd, 2);
  const int world = o.nnodes * o.nproc_per_node;
  const int rank = o.node_rank * o.nproc_per_node + local_rank;
  setenv("RANK", std::to_string(rank).c_str(), 1);
  setenv("LOCAL_RANK", std::to_string(local_rank).c_str(), 1);
  setenv("WORLD_SIZE", std::to_string(world).c_str(), 1);
  setenv("LOCAL_WORLD_SIZE", std::to_string(o.nproc_per_node).c_str(), 1);
  setenv("GROUP_RANK", std::to_string(o.node_rank).c_str(), 1);
  setenv("MASTER_ADDR", o.master_addr.c_str(), 1);
  setenv("MASTER_PORT", std::to_string(o.master_port).c_str(), 1);
  setenv("SAFEKEY_THREADS", std::to_string(threads).c_str(), 0);
  setenv("OMP_NUM_THREADS", std::to_string(threads).c_str(), 0);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  execvp(args[0], args.data());
  std::fprintf(stderr, "launch: cannot run %s: %s\n", args[0], std::strerror(errno));
  _exit(127);
}

}  // namespace

int free_port(const std::string& addr) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  SK_CHECK(fd >= 0, "launch: socket() failed: ", std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = 0;
  if (inet_pton(AF_INET, addr.c_str(), &a.sin_addr) != 1) a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    const int e = errno;
    close(fd);
    fail("launch: cannot bind a free port on ", addr, ": ", std::strerror(e));
  }
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

int launch(const LaunchOptions& in) {
  LaunchOptions o = in;
  SK_CHECK(o.nproc_per_node >= 1, "launch: --nproc-per-node must be >= 1");
  SK_CHECK(o.nnodes >= 1 && o.node_rank >= 0 && o.node_rank < o.nnodes, "launch: --node-rank ", o.node_rank,
           " is outside [0, --nnodes ", o.nnodes, ")");
  SK_CHECK(!o.command.empty(), "launch: no command (usage: safekey launch --nproc-per-node N -- safekey train ...)");
  SK_CHECK(o.master_port >= 0 && o.master_port <= 65535, "launch: --master-port must be in 0..65535");
  SK_CHECK(o.master_port != 0 || o.nnodes == 1, "launch: --master-port 0 (a free port) works on one node only");
  SK_CHECK(o.term_timeout_s >= 0, "launch: --term-timeout must be >= 0");
  if (o.master_port == 0) o.master_port = free_port(o.master_addr);
  std::vector<std::string> argv = o.command;
  if (argv[0] == "safekey" && !o.self_exe.empty()) argv[0] = o.self_exe;
  const long cores = sysconf(_SC_NPROCESSORS_ONLN);
  const int threads = std::max(1, static_cast<int>(cores > 0 ? cores : 1) / o.nproc_per_node);

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  struct sigaction old_int {}, old_term {};
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  g_signal = 0;

  std::vector<Rank> ranks(static_cast<size_t>(o.nproc_per_node));
  for (int lr = 0; lr < o.nproc_per_node; ++lr) {
    int po[2], pe[2];
    SK_CHECK(pipe(po) == 0 && pipe(pe) == 0, "launch: pipe() failed: ", std::strerror(errno));
    Rank& r = ranks[static_cast<size_t>(lr)];
    r.rank = o.node_rank * o.nproc_per_node + lr;
    r.pid = spawn_rank(o, lr, po[1], pe[1], threads, argv);
    close(po[1]);
    close(pe[1]);
    r.out.fd = po[0];
    r.err.fd = pe[0];
    r.err.to_stderr = true;
    fcntl(r.out.fd, F_SETFL, O_NONBLOCK);
    fcntl(r.err.fd, F_SETFL, O_NONBLOCK);
  }
  for (const auto& r : ranks) std::cerr << "launch: started rank " << r.rank << " (pid " << r.pid << ")\n";
  std::cerr << "launch: " << o.nnodes * o.nproc_per_node << " ranks, rendezvous " << o.master_addr << ":"
            << o.master_port << ", " << threads << " threads per rank\n";

  int first_failed = -1, first_status = 0, forwarded = 0;
  bool stopping = false, killed = false;
  Clock::time_point kill_at{};
  auto stop_all = [&](int sig) {
    for (auto& r : ranks)
      if (r.running) kill(-r.pid, sig);
  };
  for (;;) {
    std::vector<pollfd> fds;
    std::vector<Stream*> streams;
    std::vector<const Rank*> owners;
    for (auto& r : ranks)
      for (Stream* s : {&r.out, &r.err})
        if (s->fd >= 0) {
          fds.push_back({s->fd, POLLIN, 0});
          streams.push_back(s);
          owners.push_back(&r);
        }
    bool any_running = false;
    for (auto& r : ranks) any_running = any_running || r.running;
    if (!any_running && fds.empty()) break;
    if (!fds.empty()) poll(fds.data(), fds.size(), 100);
    else usleep(20000);
    for (size_t i = 0; i < fds.size(); ++i)
      if (fds[i].revents) drain(*streams[i], o.prefix_output ? cat("[rank ", owners[i]->rank, "] ") : std::string());

    if (g_signal && !forwarded) {  // forward the user's signal to every rank once
      forwarded = g_signal;
      std::cerr << "launch: got signal " << forwarded << ", forwarding it to the ranks\n";
      stop_all(forwarded);
      stopping = true;
      kill_at = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(o.term_timeout_s * 1000));
    }
    for (auto& r : ranks) {
      if (!r.running) continue;
      int status = 0;
      if (waitpid(r.pid, &status, WNOHANG) != r.pid) continue;
      r.running = false;
      r.status = status;
      const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
      if (!ok && first_failed < 0 && !forwarded) {
        first_failed = r.rank;
        first_status = status;
        std::cerr << "launch: rank " << r.rank << " (pid " << r.pid << ") " << describe_status(status)
                  << "; stopping the other ranks\n";
        stop_all(SIGTERM);
        stopping = true;
        kill_at = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(o.term_timeout_s * 1000));
      }
    }
    if (stopping && !killed && Clock::now() >= kill_at) {
      stop_all(SIGKILL);
      killed = true;
    }
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  if (first_failed >= 0) {
    std::string others;
    for (auto& r : ranks)
      if (r.rank != first_failed && !(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0))
        others += cat(others.empty() ? "" : "; ", "rank ", r.rank, " ", describe_status(r.status));
    std::cerr << "launch: failed: rank " << first_failed << " " << describe_status(first_status)
              << (others.empty() ? std::string() : cat(" (then: ", others, ")")) << "\n";
    return exit_code_of(first_status);
  }
  if (forwarded) return 128 + forwarded;
  return 0;
}

}  // namespace safekey::dist
