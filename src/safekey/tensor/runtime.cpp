#include "safekey/tensor/runtime.h"

#include <sched.h>
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

std::string describe() {
  return cat("libtorch ", TORCH_VERSION, ", CUDA ", torch::cuda::is_available() ? "yes" : "no",
             ", threads ", at::get_num_threads());
}

}  // namespace safekey::runtime
