// Errors with context. Inside components we throw safekey::Error with a message that names the
// file, record and field; the CLI edge catches it and prints one line (see apps/safekey/main.cpp).
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace safekey {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// cat("a", 1, "b") -> "a1b": streams every argument into one string.
template <typename... Args>
std::string cat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}

template <typename... Args>
[[noreturn]] void fail(Args&&... args) {
  throw Error(cat(std::forward<Args>(args)...));
}

}  // namespace safekey

// SK_CHECK(cond, "file ", path, ": bad field") throws safekey::Error when cond is false.
#define SK_CHECK(cond, ...)                  \
  do {                                       \
    if (!(cond)) ::safekey::fail(__VA_ARGS__); \
  } while (0)
