// Process-wide runtime settings: thread count and the CPU memory policy (--cpu-memory).
#include <malloc.h>

#include <cstdlib>
#include <cstring>

#include <gtest/gtest.h>

#include "safekey/tensor/runtime.h"
#include "safekey/util/error.h"
#include "support/support.h"

using namespace safekey;

TEST(Runtime, ThreadsAreSetExplicitly) {
  runtime::set_threads(1);
  EXPECT_EQ(runtime::threads(), 1);
  runtime::set_threads(0);
  EXPECT_EQ(runtime::threads(), runtime::available_cores());
}

TEST(Runtime, CpuMemoryPolicyIsValidated) {
  EXPECT_THROW(runtime::set_cpu_memory("bogus", "cpu"), Error);
  // auto follows the device; an accelerator keeps the C library's defaults.
  EXPECT_EQ(runtime::set_cpu_memory("auto", "cuda:0"), "release");
  EXPECT_EQ(runtime::set_cpu_memory("release", "cpu"), "release");
}

#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
// With `reuse`, a large block (an activation-sized 64 MiB) comes from the heap, not from a fresh
// mmap, and stays in the process after free, so the next allocation of that size does not fault
// its pages in again.
TEST(Runtime, ReuseKeepsLargeBlocksInTheHeap) {
  EXPECT_EQ(runtime::set_cpu_memory("auto", "cpu"), "reuse");
  const size_t n = size_t{64} << 20;
  const size_t mapped_before = mallinfo2().hblkhd;  // blocks mapped before the policy was set
  void* p = std::malloc(n);
  ASSERT_NE(p, nullptr);
  std::memset(p, 1, n);
  EXPECT_EQ(mallinfo2().hblkhd, mapped_before) << "the block was mmap'd";
  const size_t arena_before_free = mallinfo2().arena;
  std::free(p);
  EXPECT_EQ(mallinfo2().arena, arena_before_free) << "freed memory went back to the system";
}
#endif

TEST(Runtime, CliReportsAndValidatesThePolicy) {
  auto r = test::run_safekey({"version"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("cpu memory reuse"), std::string::npos) << r.out;
  r = test::run_safekey({"version", "--cpu-memory", "release"});
  EXPECT_NE(r.out.find("cpu memory release"), std::string::npos) << r.out;
  r = test::run_safekey({"version", "--cpu-memory", "sometimes"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--cpu-memory must be auto, reuse or release"), std::string::npos) << r.err;
}
