#include "safekey/eval/sandbox.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <thread>

#include "safekey/util/error.h"
#include "safekey/util/file.h"

namespace safekey::eval {

std::string SandboxIsolation::describe() const {
  std::string s;
  auto add = [&](bool on, const char* name) {
    if (on) s += (s.empty() ? "" : "+") + std::string(name);
  };
  add(user_ns, "userns");
  add(net_ns, "netns");
  add(pid_ns, "pidns");
  add(read_only_fs, "ro-fs");
  add(own_uid, "own-uid");
  add(seccomp_no_inet, "seccomp-no-inet");
  return s.empty() ? "rlimits-only" : s + "+rlimits";
}

std::string resolve_executable(const std::string& name) {
  if (name.empty()) return "";
  if (name.find('/') != std::string::npos) return access(name.c_str(), X_OK) == 0 ? name : "";
  const char* path = std::getenv("PATH");
  std::string p = path && *path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find(':', start);
    if (end == std::string::npos) end = p.size();
    std::string dir = p.substr(start, end - start);
    if (dir.empty()) dir = ".";
    std::string cand = dir + "/" + name;
    struct stat st;
    if (stat(cand.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(cand.c_str(), X_OK) == 0)
      return cand;
    start = end + 1;
  }
  return "";
}

namespace {

// Records the child writes to the info pipe (fixed size, so one read gives one record).
struct ChildRecord {
  char kind;  // 'I' isolation flags (just before exec), 'E' setup error, 'S' program status,
              // 'P' the program's pid (pid namespace: as the parent sees it)
  uint8_t flags;
  int32_t value;
  char text[120];
};
enum : uint8_t { kUserNs = 1, kNetNs = 2, kPidNs = 4, kRoFs = 8, kOwnUid = 16, kSeccomp = 32 };

void child_write(int fd, char kind, uint8_t flags, int32_t value, const char* text) {
  ChildRecord r;
  std::memset(&r, 0, sizeof r);
  r.kind = kind;
  r.flags = flags;
  r.value = value;
  if (text) {
    size_t n = std::strlen(text);
    if (n >= sizeof r.text) n = sizeof r.text - 1;
    std::memcpy(r.text, text, n);
  }
  ssize_t w = write(fd, &r, sizeof r);
  (void)w;
}

// Refuses socket() for every family but AF_UNIX (and io_uring, which can open sockets too).
bool install_no_inet_filter() {
#if defined(__x86_64__)
  const uint32_t arch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
  const uint32_t arch = AUDIT_ARCH_AARCH64;
#else
  return false;
#endif
#if defined(__x86_64__) || defined(__aarch64__)
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, arch, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      // x32 system calls (x86_64 numbers with bit 30 set) are refused outright.
      BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_UNIX, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EACCES),
  };
  struct sock_fprog prog = {static_cast<unsigned short>(sizeof f / sizeof f[0]), f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
  return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
#endif
}

// Everything read-only but `dir`: a private recursive read-only view of "/", then `dir` bound
// onto itself and made writable again.
bool make_fs_read_only_but(const char* dir) {
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return false;
  if (mount(dir, dir, nullptr, MS_BIND | MS_REC, nullptr) != 0) return false;
  struct mount_attr ro;
  std::memset(&ro, 0, sizeof ro);
  ro.attr_set = MOUNT_ATTR_RDONLY;
  if (syscall(SYS_mount_setattr, AT_FDCWD, "/", AT_RECURSIVE, &ro, sizeof ro) != 0) return false;
  struct mount_attr rw;
  std::memset(&rw, 0, sizeof rw);
  rw.attr_clr = MOUNT_ATTR_RDONLY;
  return syscall(SYS_mount_setattr, AT_FDCWD, dir, 0, &rw, sizeof rw) == 0;
}

struct ChildPlan {
  const char* dir;
  const char* exe;
  char* const* argv;
  char* const* envp;
  int in_fd, out_fd, err_fd, info_fd;
  bool drop_root;
  bool namespaces;
  uid_t run_uid;
  gid_t run_gid;
  rlim_t cpu_s, as_bytes, fsize_bytes, nproc;
};

// Between fork and exec: async-signal-safe calls only.
[[noreturn]] void child_main(const ChildPlan& p) {
  setpgid(0, 0);
  dup2(p.in_fd, 0);
  dup2(p.out_fd, 1);
  dup2(p.err_fd, 2);
  syscall(SYS_close_range, 3u, ~0u, 4u /* CLOSE_RANGE_CLOEXEC */);
  uint8_t flags = 0;
  if (p.drop_root) {
    if (setgroups(0, nullptr) != 0 || setgid(p.run_gid) != 0 || setuid(p.run_uid) != 0) {
      child_write(p.info_fd, 'E', 0, errno, "could not switch to the run's own uid");
      _exit(126);
    }
    flags |= kOwnUid;
  }
  if (!p.namespaces) {
    // The fallback: rlimits, the run's own uid under root and the seccomp filter only.
  } else if (unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWPID) == 0) {
    flags |= kUserNs | kNetNs | kPidNs;
  } else if (unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWNS) == 0) {
    flags |= kUserNs | kNetNs;
  } else if (unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0) {
    flags |= kUserNs | kNetNs;
  }
  if ((flags & kUserNs) && make_fs_read_only_but(p.dir)) flags |= kRoFs;
  if (flags & kPidNs) {
    // The program becomes PID 1 of the new namespace: when it ends (or is killed), the kernel
    // kills every process left in the namespace. This process waits and reports its status.
    pid_t prog = fork();
    if (prog < 0) {
      child_write(p.info_fd, 'E', flags, errno, "fork into the PID namespace failed");
      _exit(126);
    }
    if (prog > 0) {
      child_write(p.info_fd, 'P', flags, prog, nullptr);
      int st = 0;
      while (waitpid(prog, &st, 0) < 0 && errno == EINTR) {
      }
      child_write(p.info_fd, 'S', flags, st, nullptr);
      _exit(0);
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
  }
  struct rlimit r;
  r.rlim_cur = r.rlim_max = p.cpu_s;
  setrlimit(RLIMIT_CPU, &r);
  r.rlim_cur = r.rlim_max = p.as_bytes;
  setrlimit(RLIMIT_AS, &r);
  r.rlim_cur = r.rlim_max = p.fsize_bytes;
  setrlimit(RLIMIT_FSIZE, &r);
  r.rlim_cur = r.rlim_max = 0;
  setrlimit(RLIMIT_CORE, &r);
  r.rlim_cur = r.rlim_max = 64;
  setrlimit(RLIMIT_NOFILE, &r);
  r.rlim_cur = r.rlim_max = p.nproc;
  setrlimit(RLIMIT_NPROC, &r);
  if (install_no_inet_filter()) flags |= kSeccomp;
  if (chdir(p.dir) != 0) {
    child_write(p.info_fd, 'E', flags, errno, "chdir into the run folder failed");
    _exit(126);
  }
  child_write(p.info_fd, 'I', flags, 0, nullptr);
  execve(p.exe, p.argv, p.envp);
  child_write(p.info_fd, 'E', flags, errno, "exec of the python interpreter failed");
  _exit(127);
}

std::string tail_of_file(const std::string& path, size_t max_bytes) {
  if (!path_exists(path)) return "";
  std::string s = read_file(path);
  return s.size() > max_bytes ? s.substr(s.size() - max_bytes) : s;
}

}  // namespace

namespace {

// Whether a user that is neither owner nor group member (the run's uid) may execute `path`: every
// directory on its real path searchable by others and the file executable by others.
bool executable_by_others(const std::string& path) {
  std::error_code ec;
  const std::filesystem::path real = std::filesystem::canonical(path, ec);
  if (ec) return false;
  struct stat st;
  if (stat(real.c_str(), &st) != 0 || !(st.st_mode & S_IXOTH)) return false;
  for (std::filesystem::path d = real.parent_path(); !d.empty(); d = d.parent_path()) {
    if (stat(d.c_str(), &st) != 0 || !(st.st_mode & S_IXOTH)) return false;
    if (d == d.root_path()) break;
  }
  return true;
}

}  // namespace

namespace {

// Under root every run gets a uid (and gid) of its own from [kRunUidBase, kRunUidBase + kRunUidSlots),
// claimed across processes by an exclusive lock on one file per uid. RLIMIT_NPROC counts the
// processes of a uid, so a fork bomb in one run cannot starve the runs beside it (with one shared
// uid such as nobody it did), and whatever a run leaves behind is killed by uid.
constexpr uid_t kRunUidBase = 0x5afe0000;  // 1526595584: far above the uids of real accounts
constexpr int kRunUidSlots = 4096;

// SIGKILL to every process of `uid` (a child that becomes `uid` and signals -1). Bounded: the
// helper does nothing that can block.
void kill_all_of(uid_t uid, gid_t gid) {
  const pid_t k = fork();
  if (k == 0) {
    if (setgroups(0, nullptr) == 0 && setgid(gid) == 0 && setuid(uid) == 0) kill(-1, SIGKILL);
    _exit(0);
  }
  if (k > 0)
    while (waitpid(k, nullptr, 0) < 0 && errno == EINTR) {
    }
}

class RunUid {
 public:
  // Claims a free uid (lock files in `lock_dir`) and kills anything still running under it.
  explicit RunUid(const std::string& lock_dir) {
    static std::atomic<unsigned> counter{0};
    SK_CHECK(mkdir(lock_dir.c_str(), 0700) == 0 || errno == EEXIST, "sandbox: cannot make ", lock_dir, ": ",
             std::strerror(errno));
    const unsigned start = static_cast<unsigned>(getpid()) * 7919u + counter++;
    for (int i = 0; i < kRunUidSlots && fd_ < 0; ++i) {
      const int slot = static_cast<int>((start + static_cast<unsigned>(i)) % kRunUidSlots);
      const std::string path = cat(lock_dir, "/", slot, ".lock");
      const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
      if (fd < 0) continue;
      if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
        fd_ = fd;
        uid_ = kRunUidBase + static_cast<uid_t>(slot);
      } else {
        close(fd);
      }
    }
    SK_CHECK(fd_ >= 0, "sandbox: no free run uid (", kRunUidSlots, " runs at once?) under ", lock_dir);
    kill_all_of(uid_, uid_);
  }
  ~RunUid() {
    kill_all_of(uid_, uid_);
    close(fd_);
  }
  RunUid(const RunUid&) = delete;
  RunUid& operator=(const RunUid&) = delete;
  uid_t uid() const { return uid_; }

 private:
  int fd_ = -1;
  uid_t uid_ = 0;
};

}  // namespace

SandboxResult run_python_sandboxed(const std::string& program, const SandboxOptions& opts) {
  SandboxResult res;
  std::string exe = resolve_executable(opts.python);
  if (exe.empty()) {
    res.setup_error = "python interpreter '" + opts.python + "' not found (set --sandbox-python)";
    return res;
  }
  // Under root the program runs as a uid of its own, which cannot enter e.g. /root: a `python3` found
  // on PATH there (a pyenv shim) is replaced by the system's; an explicit path is an error.
  if (geteuid() == 0 && !executable_by_others(exe)) {
    std::string fallback;
    if (opts.python.find('/') == std::string::npos)
      for (const char* c : {"/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3"})
        if (access(c, X_OK) == 0 && executable_by_others(c)) {
          fallback = c;
          break;
        }
    if (fallback.empty()) {
      res.setup_error = "python interpreter '" + exe +
                        "' cannot be run by an unprivileged user (under root the sandbox runs each program as a uid of "
                        "its own); set --sandbox-python "
                        "to an interpreter outside private folders, e.g. /usr/bin/python3";
      return res;
    }
    exe = fallback;
  }
  std::string base = opts.temp_base;
  if (base.empty()) {
    const char* t = std::getenv("TMPDIR");
    base = t && *t ? t : "/tmp";
  }
  std::string tmpl = base + "/safekey-sandbox-XXXXXX";
  std::vector<char> tbuf(tmpl.begin(), tmpl.end());
  tbuf.push_back('\0');
  SK_CHECK(mkdtemp(tbuf.data()) != nullptr, "sandbox: cannot make a run folder under ", base, ": ",
           std::strerror(errno));
  res.dir = tbuf.data();
  const std::string prog_path = res.dir + "/prog.py";
  write_file_atomic(prog_path, program);

  const bool root = geteuid() == 0;
  std::unique_ptr<RunUid> run_uid;
  uid_t uid = geteuid();
  if (root) {
    run_uid = std::make_unique<RunUid>(base + "/safekey-sandbox-uids");
    uid = run_uid->uid();
    SK_CHECK(chown(res.dir.c_str(), uid, uid) == 0 && chown(prog_path.c_str(), uid, uid) == 0,
             "sandbox: cannot hand ", res.dir, " to the run's uid ", uid, ": ", std::strerror(errno));
    chmod(prog_path.c_str(), 0644);
  }
  // Captured output lives beside the program (bounded by RLIMIT_FSIZE).
  const std::string out_path = res.dir + "/.stdout", err_path = res.dir + "/.stderr";
  int in_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  int out_fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int err_fd = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int info[2] = {-1, -1};
  bool ok = in_fd >= 0 && out_fd >= 0 && err_fd >= 0 && pipe2(info, O_CLOEXEC) == 0;
  auto close_all = [&]() {
    for (int fd : {in_fd, out_fd, err_fd, info[0], info[1]})
      if (fd >= 0) close(fd);
  };
  if (!ok) {
    close_all();
    SK_CHECK(false, "sandbox: cannot open the capture files in ", res.dir, ": ",
             std::strerror(errno));
  }

  std::string env_home = "HOME=" + res.dir, env_tmp = "TMPDIR=" + res.dir;
  std::vector<std::string> args = {exe, "-I", "prog.py"};
  std::vector<std::string> env = {"PATH=/usr/bin:/bin", "LANG=C.UTF-8", env_home, env_tmp};
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  const double timeout_s = opts.timeout_s > 0 ? opts.timeout_s : 10;
  ChildPlan plan{res.dir.c_str(),
                 exe.c_str(),
                 argv.data(),
                 envp.data(),
                 in_fd,
                 out_fd,
                 err_fd,
                 info[1],
                 root,
                 opts.namespaces,
                 uid,
                 uid,
                 static_cast<rlim_t>(std::ceil(timeout_s)) + 1,
                 static_cast<rlim_t>(opts.memory_mb) << 20,
                 static_cast<rlim_t>(opts.file_size_mb) << 20,
                 static_cast<rlim_t>(opts.max_processes)};

  const auto t0 = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid < 0) {
    close_all();
    SK_CHECK(false, "sandbox: fork failed: ", std::strerror(errno));
  }
  if (pid == 0) child_main(plan);
  setpgid(pid, pid);  // also done by the child; whichever runs first wins the race harmlessly
  for (int fd : {in_fd, out_fd, err_fd, info[1]}) close(fd);

  // Wait for the child, reading its records, until it exits or the wall clock runs out.
  std::string setup_error;
  int status = 0, prog_status = -1;
  pid_t prog_pid = -1;
  bool have_status = false, info_open = true;
  auto read_records = [&](int wait_ms) {
    if (!info_open) {
      if (wait_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
      return;
    }
    pollfd pfd{info[0], POLLIN, 0};
    if (poll(&pfd, 1, wait_ms) <= 0) return;
    ChildRecord r;
    ssize_t n = read(info[0], &r, sizeof r);
    if (n <= 0) {
      info_open = false;
      return;
    }
    if (n != static_cast<ssize_t>(sizeof r)) return;
    SandboxIsolation& iso = res.isolation;
    iso.user_ns |= (r.flags & kUserNs) != 0;  // records from both processes: the union
    iso.net_ns |= (r.flags & kNetNs) != 0;
    iso.pid_ns |= (r.flags & kPidNs) != 0;
    iso.read_only_fs |= (r.flags & kRoFs) != 0;
    iso.own_uid |= (r.flags & kOwnUid) != 0;
    iso.seccomp_no_inet |= (r.flags & kSeccomp) != 0;
    if (r.kind == 'E') setup_error = cat(r.text, ": ", std::strerror(r.value));
    if (r.kind == 'P') prog_pid = r.value;
    if (r.kind == 'S') {
      prog_status = r.value;
      have_status = true;
    }
  };
  const auto deadline = t0 + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                 std::chrono::duration<double>(timeout_s));
  for (;;) {
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      res.timed_out = true;
      // With a PID namespace the program is its PID 1: killing it makes the kernel kill and reap
      // every process in the namespace before the waiting child sees it exit, so once that child
      // has exited nothing of the run is left. Without one, the process group is killed.
      bool reaped = false;
      if (prog_pid > 0) {
        kill(prog_pid, SIGKILL);
        const auto grace = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (!(reaped = waitpid(pid, &status, WNOHANG) == pid) &&
               std::chrono::steady_clock::now() < grace)
          read_records(10);
      }
      if (!reaped) {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
      }
      break;
    }
    read_records(10);
  }
  while (info_open) read_records(0);  // the child is gone: every record is in the pipe
  close(info[0]);
  kill(-pid, SIGKILL);  // anything the program left behind in its process group
  run_uid.reset();      // and, under root, anything else still running under the run's uid
  res.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  const int st = have_status ? prog_status : status;
  if (WIFEXITED(st)) res.exit_code = WEXITSTATUS(st);
  if (WIFSIGNALED(st)) res.signal = WTERMSIG(st);
  if (res.timed_out) res.signal = SIGKILL;
  res.setup_error = setup_error;
  res.out = tail_of_file(out_path, 64 << 10);
  res.err = tail_of_file(err_path, 64 << 10);
  if (!opts.keep_dir) {
    std::error_code ec;
    std::filesystem::remove_all(res.dir, ec);
  }
  return res;
}

}  // namespace safekey::eval
