// A fuzz target that misbehaves on purpose, for the tests of replay_main.cpp's failure paths
// (CMakeLists.txt, tests replay_selftest_*): the input's first word says what it does. Catches a
// replay program that passes, or fails without naming the input, when a target throws, aborts,
// spins, or trips a sanitizer.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  if (in.rfind("throw", 0) == 0) throw std::runtime_error("selftest: thrown on purpose");
  if (in.rfind("abort", 0) == 0) std::abort();
  if (in.rfind("spin", 0) == 0) {
    volatile uint64_t n = 0;
    for (;;) n = n + 1;
  }
  if (in.rfind("overflow", 0) == 0) {  // a heap read past the end (reported by ASan)
    char* p = static_cast<char*>(std::malloc(8));
    std::memset(p, 0, 8);
    volatile char c = p[8 + (size & 1)];
    std::free(p);
    return c;
  }
  return 0;
}
