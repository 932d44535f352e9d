// `safekey launch`: starts the ranks of one node under the torchrun environment contract, so that no
// Python is needed. Each rank is a child process with RANK, LOCAL_RANK, WORLD_SIZE,
// LOCAL_WORLD_SIZE, GROUP_RANK, MASTER_ADDR and MASTER_PORT set (and SAFEKEY_THREADS / OMP_NUM_THREADS
// = cores / ranks unless already set). Its stdout and stderr lines are copied to the launcher's with
// a "[rank N] " prefix. SIGINT / SIGTERM to the launcher are forwarded to every rank. When a rank
// fails (non-zero exit or a signal), the others get SIGTERM, then SIGKILL after term_timeout_s, and
// the launcher exits non-zero naming the rank and how it ended. A rank that outlives a killed
// launcher gets SIGTERM from the kernel (PR_SET_PDEATHSIG).
#pragma once
#include <string>
#include <vector>

namespace safekey::dist {

struct LaunchOptions {
  int nproc_per_node = 1;
  int nnodes = 1, node_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;  // 0: a free port of this machine (one node only)
  bool prefix_output = true;
  double term_timeout_s = 30;
  std::vector<std::string> command;  // every rank's argv; a first word "safekey" runs self_exe
  std::string self_exe;              // this executable
};

// Runs the ranks until they all end. Returns 0 when every rank exited 0; otherwise the first failed
// rank's exit status (128 + signal number when it was killed), after printing which rank failed.
int launch(const LaunchOptions& options);

// A TCP port that was free on `addr` a moment ago (bind to port 0).
int free_port(const std::string& addr);

}  // namespace safekey::dist
