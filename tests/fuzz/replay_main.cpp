// Corpus replay without libFuzzer: the `main` of the replay_<target> test programs (CMakeLists.txt,
// label "fuzz"). Each file under the folders given on the command line (tests/fuzz/corpus/<target>
// and tests/fuzz/regressions/<target>) runs once through the target's LLVMFuzzerTestOneInput. The
// test build compiles the targets and the parsers they reach with the project's own compiler under
// ASan + UBSan (SAFEKEY_REPLAY_SANITIZE), so CI replays the committed corpus under the sanitizers
// without clang or a second build tree. A sanitizer report, a crash, an abort (the targets abort on
// a broken invariant), an exception escaping the target or an input running longer than the
// per-input limit fails the program and names the input (each input is also named on stderr
// before it runs: a UBSan report follows the name of the input that caused it).
//
// Usage: replay_<target> [--timeout SECONDS] DIR_OR_FILE...
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define SAFEKEY_REPLAY_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SAFEKEY_REPLAY_ASAN 1
#endif
#endif
#ifdef SAFEKEY_REPLAY_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

// The input being run, for the signal and terminate handlers (async-signal-safe: a fixed buffer).
char g_current[4096] = "(none)";

void say_current(const char* what) {
  const char* parts[] = {"replay: ", what, " on input ", g_current, "\n"};
  for (const char* p : parts) {
    const ssize_t n = write(STDERR_FILENO, p, std::strlen(p));
    (void)n;
  }
}

void on_signal(int sig) {
  say_current(sig == SIGALRM ? "timeout" : strsignal(sig));
  std::signal(sig, SIG_DFL);
  if (sig == SIGALRM) _exit(3);
  std::raise(sig);
}

void on_terminate() {
  say_current("an exception escaped the target (std::terminate)");
  if (auto e = std::current_exception()) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      std::fprintf(stderr, "replay: what(): %s\n", x.what());
    } catch (...) {
    }
  }
  _exit(4);
}

}  // namespace

int main(int argc, char** argv) {
  unsigned timeout_s = 10;
  std::vector<std::filesystem::path> inputs;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--timeout" && i + 1 < argc) {
      timeout_s = static_cast<unsigned>(std::strtoul(argv[++i], nullptr, 10));
      continue;
    }
    const std::filesystem::path p(a);
    if (std::filesystem::is_directory(p)) {
      for (const auto& e : std::filesystem::directory_iterator(p))
        if (e.is_regular_file()) inputs.push_back(e.path());
    } else if (std::filesystem::is_regular_file(p)) {
      inputs.push_back(p);
    } else {
      std::fprintf(stderr, "replay: %s is neither a folder nor a file\n", a.c_str());
      return 2;
    }
  }
  // An empty corpus would make the replay pass without running anything.
  if (inputs.empty()) {
    std::fprintf(stderr, "replay: no inputs found (give the corpus folders)\n");
    return 2;
  }
  std::sort(inputs.begin(), inputs.end());
#ifdef SAFEKEY_REPLAY_ASAN
  // The sanitizers report crashes and their own findings with a stack; then this names the input.
  __sanitizer_set_death_callback([] { say_current("sanitizer report"); });
  for (int sig : {SIGABRT, SIGALRM}) std::signal(sig, on_signal);
#else
  for (int sig : {SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL, SIGALRM}) std::signal(sig, on_signal);
#endif
  std::set_terminate(on_terminate);

  size_t bytes = 0;
  for (const auto& path : inputs) {
    std::snprintf(g_current, sizeof g_current, "%s", path.c_str());
    std::ifstream f(path, std::ios::binary);
    const std::vector<char> buf((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (!f.good() && !f.eof()) {
      std::fprintf(stderr, "replay: cannot read %s\n", path.c_str());
      return 2;
    }
    bytes += buf.size();
    // Named before it runs: UBSan's own runtime ends the program without calling the death callback
    // (under GCC it is a separate library), so its report follows this line.
    std::fprintf(stderr, "replay: running %s\n", g_current);
    alarm(timeout_s);
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(buf.data()), buf.size());
    alarm(0);
  }
#ifdef SAFEKEY_REPLAY_ASAN
  const char* mode = "under ASan + UBSan";
#else
  const char* mode = "without sanitizers";
#endif
  std::printf("replay: %zu inputs (%zu bytes) ran %s, none failed\n", inputs.size(), bytes, mode);
  return 0;
}
