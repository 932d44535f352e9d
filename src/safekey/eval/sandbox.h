// A sandbox for running untrusted Python (HumanEval completions): one child process tree per run,
// contained by what the kernel allows (docs/evaluation.md, "HumanEval sandbox", lists each layer
// and its fallback):
//   - its own fresh temp folder as working directory, HOME and TMPDIR; an empty environment
//     (PATH=/usr/bin:/bin, LANG=C.UTF-8 only); the program is run with `python3 -I`;
//   - rlimits: CPU seconds, address space, file size, open files, processes, no core dumps;
//   - under root, run as a uid/gid of its own (claimed per run from a reserved range): root ignores
//     RLIMIT_NPROC and may write anywhere, and a uid shared by concurrent runs (such as nobody)
//     would share their process limit; whatever the run leaves behind is killed by uid;
//   - where unprivileged user namespaces work: new user, network (no interfaces but a down
//     loopback), mount and PID namespaces; the whole file system is remounted read-only except the
//     run's temp folder, and the program runs as PID 1 of its own PID namespace, so every process
//     it starts dies with it;
//   - a seccomp filter that refuses socket() for every address family but AF_UNIX (the network
//     fallback when namespaces are refused);
//   - a wall-clock timeout after which the process group is killed with SIGKILL.
// Every wait is bounded by the wall-clock timeout. Safe to call from several threads at once
// (the child runs only async-signal-safe calls between fork and exec).
#pragma once
#include <string>
#include <vector>

namespace safekey::eval {

struct SandboxOptions {
  std::string python = "python3";  // interpreter: a path, or a name looked up on PATH
  double timeout_s = 10;           // wall clock; CPU limit = ceil(timeout) + 1 s
  int64_t memory_mb = 1024;        // RLIMIT_AS
  int64_t file_size_mb = 16;       // RLIMIT_FSIZE (also bounds captured stdout/stderr)
  int64_t max_processes = 32;      // RLIMIT_NPROC
  std::string temp_base;           // where run folders are made ("" = $TMPDIR or /tmp)
  bool keep_dir = false;           // keep the run folder (tests and debugging)
  bool namespaces = true;          // false: skip the namespace layers, as on kernels that refuse
                                   // them (tests of the fallback)
};

// What containment was in force for a run (the layers that were refused are false).
struct SandboxIsolation {
  bool user_ns = false;       // new user namespace
  bool net_ns = false;        // new network namespace: no network at all
  bool pid_ns = false;        // own PID namespace: the process tree dies with the program
  bool read_only_fs = false;  // everything read-only but the run folder
  bool own_uid = false;  // under root: ran as a uid of its own
  bool seccomp_no_inet = false;  // socket() refused except AF_UNIX
  std::string describe() const;  // "userns+netns+pidns+ro-fs+seccomp" or "rlimits-only ..."
};

struct SandboxResult {
  int exit_code = -1;      // the program's exit status (when it exited)
  int signal = 0;          // the signal that ended it (0 = exited); SIGKILL after a timeout
  bool timed_out = false;  // killed at the wall-clock timeout
  double wall_s = 0;
  std::string out, err;  // captured stdout / stderr (at most the last 64 KiB each)
  std::string dir;       // the run folder (removed unless keep_dir)
  SandboxIsolation isolation;
  std::string setup_error;  // non-empty when the sandbox could not start the program
};

// Runs `python -I prog.py` in a fresh run folder holding `program` as prog.py.
SandboxResult run_python_sandboxed(const std::string& program, const SandboxOptions& opts);

// `name` resolved on $PATH (returned as is when it contains '/'); "" when not found.
std::string resolve_executable(const std::string& name);

}  // namespace safekey::eval
