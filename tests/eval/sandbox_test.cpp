// The Python sandbox with real processes: each test runs a hostile program under
// run_python_sandboxed and checks it was contained, its run folder is gone and no process of it is
// left. Interpreter: $SAFEKEY_TEST_PYTHON, else /usr/bin/python3, else python3 on PATH.
#include "safekey/eval/sandbox.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "safekey/util/file.h"
#include "support/support.h"

namespace safekey::eval {
namespace {

SandboxOptions opts(double timeout_s = 10) {
  SandboxOptions o;
  o.python = test::env_or("SAFEKEY_TEST_PYTHON",
                          path_exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3");
  o.timeout_s = timeout_s;
  return o;
}

#define REQUIRE_PYTHON()                                                               \
  do {                                                                                 \
    if (resolve_executable(opts().python).empty()) GTEST_SKIP() << "no python3 found"; \
  } while (0)

// Processes whose environment carries HOME=<run folder>: the program and everything it started.
int processes_of_run(const std::string& dir) {
  int n = 0;
  DIR* d = opendir("/proc");
  if (!d) return 0;
  const std::string needle = "HOME=" + dir;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::string env;
    try {
      env = read_file(std::string("/proc/") + e->d_name + "/environ");
    } catch (const std::exception&) {
      continue;  // gone, or not ours to read
    }
    for (size_t p = 0; p < env.size();) {
      size_t z = env.find('\0', p);
      if (z == std::string::npos) z = env.size();
      if (env.compare(p, z - p, needle) == 0) ++n;
      p = z + 1;
    }
  }
  closedir(d);
  return n;
}

// Catches: an inherited environment, a working directory other than the run folder, output not
// captured, and run folders left behind.
TEST(Sandbox, RunsInItsOwnFolderWithAClearedEnvironment) {
  REQUIRE_PYTHON();
  setenv("SAFEKEY_SANDBOX_LEAK_CHECK", "secret", 1);
  auto r = run_python_sandboxed(
      "import os, sys\n"
      "open('inside.txt', 'w').write('ok')\n"
      "print(sorted(os.environ))\n"
      "print(os.getcwd() == os.environ['HOME'] == os.environ['TMPDIR'])\n"
      "print(open('inside.txt').read())\n"
      "sys.stderr.write('to stderr')\n",
      opts());
  unsetenv("SAFEKEY_SANDBOX_LEAK_CHECK");
  ASSERT_TRUE(r.setup_error.empty()) << r.setup_error;
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "['HOME', 'LANG', 'PATH', 'TMPDIR']\nTrue\nok\n");
  EXPECT_EQ(r.err, "to stderr");
  EXPECT_FALSE(r.timed_out);
  EXPECT_FALSE(path_exists(r.dir)) << "run folder left behind: " << r.dir;
  std::cerr << "isolation: " << r.isolation.describe() << "\n";
}

// Catches: a missing wall-clock timeout (the test would hang until ctest's limit) and a timeout
// that does not kill (the call would return late).
TEST(Sandbox, InfiniteLoopIsKilledAtTheWallClockTimeout) {
  REQUIRE_PYTHON();
  auto r = run_python_sandboxed("while True:\n    pass\n", opts(1.5));
  EXPECT_TRUE(r.timed_out);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_LT(r.wall_s, 5.0);
  EXPECT_EQ(processes_of_run(r.dir), 0);
}

// Catches: no process limit (the machine fills with processes) and children that survive the
// kill because they left the process group (setsid).
TEST(Sandbox, ForkBombIsCappedAndTheProcessTreeIsGoneAfterwards) {
  REQUIRE_PYTHON();
  auto r = run_python_sandboxed(
      "import os, time\n"
      "n = 0\n"
      "while True:\n"
      "    try:\n"
      "        if os.fork() == 0:\n"
      "            os.setsid()\n"
      "            time.sleep(1000)\n"
      "        n += 1\n"
      "    except OSError:\n"
      "        print('refused after', n, flush=True)\n"
      "        break\n"
      "time.sleep(1000)\n",
      opts(3));
  EXPECT_TRUE(r.timed_out);
  EXPECT_NE(r.out.find("refused after"), std::string::npos) << r.out << r.err;
  if (!r.isolation.pid_ns)
    GTEST_SKIP() << "no PID namespace here (" << r.isolation.describe()
                 << "): children that call setsid() outlive the process-group kill";
  EXPECT_EQ(processes_of_run(r.dir), 0);
}

// Catches: no address-space limit (the allocation would succeed).
TEST(Sandbox, MemoryBombFails) {
  REQUIRE_PYTHON();
  auto o = opts();
  o.memory_mb = 512;
  auto r = run_python_sandboxed("x = bytearray(2 << 30)\nprint('allocated')\n", o);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.out.find("allocated"), std::string::npos);
  EXPECT_NE(r.err.find("MemoryError"), std::string::npos) << r.err;
}

// Catches: no file-size limit.
TEST(Sandbox, FileSizeLimitStopsAHugeWrite) {
  REQUIRE_PYTHON();
  auto o = opts();
  o.file_size_mb = 1;
  auto r = run_python_sandboxed("open('big', 'wb').write(b'x' * (4 << 20))\nprint('written')\n", o);
  EXPECT_FALSE(r.exit_code == 0 && r.signal == 0);
  EXPECT_EQ(r.out.find("written"), std::string::npos);
}

// Catches: a writable file system outside the run folder. The target folder is world-writable,
// so only the sandbox (read-only view of the file system) can stop the write.
TEST(Sandbox, WritesOutsideTheRunFolderFail) {
  REQUIRE_PYTHON();
  char tmpl[] = "/tmp/safekey-outside-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string outside = tmpl;
  chmod(outside.c_str(), 0777);
  auto r = run_python_sandboxed(
      "open('" + outside + "/escaped.txt', 'w').write('x')\nprint('escaped')\n", opts());
  bool escaped = path_exists(outside + "/escaped.txt");
  std::remove((outside + "/escaped.txt").c_str());
  rmdir(outside.c_str());
  if (!r.isolation.read_only_fs)
    GTEST_SKIP() << "no mount namespace here (" << r.isolation.describe()
                 << "): world-writable folders stay writable (documented fallback)";
  EXPECT_FALSE(escaped);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("Read-only file system"), std::string::npos) << r.err;
}

// Catches: network access. A real listener on 127.0.0.1 must see no connection.
TEST(Sandbox, NetworkCallsFail) {
  REQUIRE_PYTHON();
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  ASSERT_GE(ls, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(ls, 4), 0);
  socklen_t len = sizeof a;
  getsockname(ls, reinterpret_cast<sockaddr*>(&a), &len);
  const int port = ntohs(a.sin_port);
  auto r = run_python_sandboxed(
      "import socket\n"
      "s = socket.create_connection(('127.0.0.1', " +
          std::to_string(port) +
          "), timeout=2)\n"
          "s.sendall(b'leak')\n"
          "print('connected')\n",
      opts());
  int c = accept(ls, nullptr, nullptr);
  close(ls);
  EXPECT_LT(c, 0) << "the sandboxed program reached the listener";
  if (c >= 0) close(c);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.out.find("connected"), std::string::npos);
  EXPECT_TRUE(r.isolation.net_ns || r.isolation.seccomp_no_inet) << r.isolation.describe();
}

// The documented fallback where the kernel refuses namespaces (forced here): the network is still
// refused (seccomp), memory and processes are still capped, a child in the process group dies with
// the run, and the isolation string says which layers were missing.
// Catches: fallback layers that only work together with the namespaces.
TEST(Sandbox, FallbackWithoutNamespacesStillContainsNetworkMemoryAndTheProcessGroup) {
  REQUIRE_PYTHON();
  auto o = opts(2);
  o.namespaces = false;
  auto net = run_python_sandboxed(
      "import socket\nsocket.create_connection(('127.0.0.1', 9), timeout=1)\nprint('connected')\n",
      o);
  EXPECT_EQ(net.out.find("connected"), std::string::npos);
  EXPECT_NE(net.err.find("PermissionError"), std::string::npos) << net.err;
  EXPECT_FALSE(net.isolation.net_ns);
  EXPECT_TRUE(net.isolation.seccomp_no_inet) << net.isolation.describe();
  o.memory_mb = 512;
  auto mem = run_python_sandboxed("x = bytearray(2 << 30)\n", o);
  EXPECT_NE(mem.err.find("MemoryError"), std::string::npos) << mem.err;
  // Not as root, the fork may be refused (EAGAIN) by the RLIMIT_NPROC the user's other processes
  // share; the program then sleeps alone, and the kill at the timeout is still what ends it.
  auto kid = run_python_sandboxed(
      "import os, time\ntry:\n    pid = os.fork()\nexcept OSError:\n    pid = 1\nif pid == 0:\n    time.sleep(1000)\n"
      "time.sleep(1000)\n",
      o);
  EXPECT_TRUE(kid.timed_out) << "exit " << kid.exit_code << ": " << kid.err;
  for (int i = 0; i < 100 && processes_of_run(kid.dir) > 0; ++i) usleep(20000);  // SIGKILL is async
  EXPECT_EQ(processes_of_run(kid.dir), 0);
  EXPECT_EQ(kid.isolation.describe().find("pidns"), std::string::npos);
}

// Catches: a missing interpreter reported as a failed program instead of a setup error.
TEST(Sandbox, MissingInterpreterIsASetupError) {
  auto o = opts();
  o.python = "no-such-python-xyz";
  auto r = run_python_sandboxed("print(1)\n", o);
  EXPECT_NE(r.setup_error.find("no-such-python-xyz"), std::string::npos) << r.setup_error;
}

// Under root the program runs as a uid of its own. A `python3` found on PATH in a private folder (as
// a pyenv shim under /root is) cannot be run by it: the system interpreter is used instead, and the
// same interpreter named by its path is a setup error saying why.
// Catches: every HumanEval program scored as failed because exec was refused (what happened with
// the pyenv shim before), or a silent switch away from an interpreter the user named explicitly.
TEST(Sandbox, InterpreterInAPrivateFolderFallsBackOrIsNamed) {
  if (geteuid() != 0) GTEST_SKIP() << "only root drops to a uid of its own";
  if (!path_exists("/usr/bin/python3")) GTEST_SKIP() << "no /usr/bin/python3";
  const std::string dir = test::make_temp_dir("sandbox_private_python");
  const std::string shim = dir + "/python3";
  write_file_atomic(shim, "#!/bin/sh\nexec /usr/bin/python3 \"$@\"\n");
  ASSERT_EQ(chmod(shim.c_str(), 0755), 0);
  ASSERT_EQ(chmod(dir.c_str(), 0700), 0);
  const char* old_path = std::getenv("PATH");
  const std::string saved = old_path ? old_path : "";
  setenv("PATH", (dir + ":" + saved).c_str(), 1);
  auto o = opts();
  o.python = "python3";
  auto r = run_python_sandboxed("print(6 * 7)\n", o);
  setenv("PATH", saved.c_str(), 1);
  EXPECT_TRUE(r.setup_error.empty()) << r.setup_error;
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "42\n");
  o.python = shim;
  auto named = run_python_sandboxed("print(1)\n", o);
  EXPECT_NE(named.setup_error.find("cannot be run by an unprivileged user"), std::string::npos) << named.setup_error;
  EXPECT_NE(named.setup_error.find(shim), std::string::npos) << named.setup_error;
}

// Under root two runs at once have their own uids, so their own process limits: a fork bomb
// contained in one (no namespaces, so RLIMIT_NPROC is what stops it) leaves the other free to fork,
// and nothing of either is left running afterwards. Catches one uid shared by every run (as uid
// nobody was: the second run's forks were refused while the bomb held the limit) and a run uid
// whose processes outlive the run.
TEST(Sandbox, ConcurrentRunsHaveTheirOwnUidAndProcessLimit) {
  REQUIRE_PYTHON();
  if (geteuid() != 0) GTEST_SKIP() << "only root runs each program as a uid of its own";
  auto o = opts(3);
  o.namespaces = false;
  o.max_processes = 16;
  SandboxResult bomb;
  std::thread t([&] {
    bomb = run_python_sandboxed(
        "import os, time\nopen('uid', 'w').write(str(os.getuid()))\nwhile True:\n    try:\n        os.fork()\n"
        "    except OSError:\n        time.sleep(0.01)\n",
        [&] { auto b = o; b.keep_dir = true; return b; }());
  });
  usleep(700000);  // the bomb holds its limit by now
  auto calm = run_python_sandboxed(
      "import os\npids = [os.fork() for _ in range(4)]\nfor p in pids:\n    if p == 0:\n        os._exit(0)\n"
      "for p in pids:\n    os.waitpid(p, 0)\nprint('forked', os.getuid())\n",
      o);
  t.join();
  EXPECT_EQ(calm.exit_code, 0) << calm.err;
  ASSERT_EQ(calm.out.rfind("forked ", 0), 0u) << calm.out << calm.err;
  EXPECT_TRUE(calm.isolation.own_uid) << calm.isolation.describe();
  EXPECT_TRUE(bomb.timed_out);
  const std::string bomb_uid = read_file(bomb.dir + "/uid");
  EXPECT_NE(calm.out, "forked " + bomb_uid + "\n") << "both runs had the same uid";
  EXPECT_NE(bomb_uid, "0");
  auto processes_of_uid = [&] {
    int n = 0;
    DIR* d = opendir("/proc");
    if (!d) return 0;
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
      const std::string status = std::string("/proc/") + e->d_name + "/status";
      if (path_exists(status) && read_file(status).find("\nUid:\t" + bomb_uid + "\t") != std::string::npos) ++n;
    }
    closedir(d);
    return n;
  };
  // SIGKILL is asynchronous and the killed processes are reaped by init: bounded wait.
  for (int i = 0; i < 250 && processes_of_uid() > 0; ++i) usleep(20000);
  EXPECT_EQ(processes_of_uid(), 0) << "processes of the bomb's uid outlived the run";
  std::error_code ec;
  std::filesystem::remove_all(bomb.dir, ec);
}

}  // namespace
}  // namespace safekey::eval
