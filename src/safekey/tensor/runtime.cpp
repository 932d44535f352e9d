#include "safekey/tensor/runtime.h"

#include <sched.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <torch/version.h>

#include <thread>

#include "safekey/util/error.h"

namespace safekey::runtime {

int available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

void set_threads(int n) {
  if (n <= 0) n = available_cores();
  at::set_num_threads(n);
}

int threads() { return at::get_num_threads(); }

namespace {
std::string g_cpu_memory = "release";
}

std::string set_cpu_memory(const std::string& policy, const std::string& device) {
  SK_CHECK(policy == "auto" || policy == "reuse" || policy == "release",
           "--cpu-memory must be auto, reuse or release, got '", policy, "'");
  const bool on_cpu = device.empty() || device.rfind("cpu", 0) == 0;
  const bool reuse = policy == "reuse" || (policy == "auto" && on_cpu);
#if defined(__GLIBC__)
  if (reuse) {
    mallopt(M_MMAP_MAX, 0);              // large blocks from the heap, not a fresh mmap each time
    mallopt(M_TRIM_THRESHOLD, 1 << 30);  // give memory back only when 1 GiB lies free at the top
    mallopt(M_TOP_PAD, 64 << 20);        // grow the heap in large steps
    g_cpu_memory = "reuse";
  } else if (g_cpu_memory == "reuse") {  // back to glibc's documented defaults
    mallopt(M_MMAP_MAX, 65536);
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    mallopt(M_TRIM_THRESHOLD, 128 * 1024);
    mallopt(M_TOP_PAD, 128 * 1024);
    g_cpu_memory = "release";
  }
#else
  (void)reuse;
#endif
  return g_cpu_memory;
}

std::string describe() {
  return cat("libtorch ", TORCH_VERSION, ", CUDA ", torch::cuda::is_available() ? "yes" : "no",
             ", threads ", at::get_num_threads(), ", cpu memory ", g_cpu_memory);
}

}  // namespace safekey::runtime
