// Process-wide libtorch settings, kept out of headers that do not need libtorch.
#pragma once
#include <string>

namespace safekey::runtime {

// Sets libtorch's intra-op thread count; n <= 0 means all available cores. libtorch starts with
// one thread on some machines, so every command calls this.
void set_threads(int n);
int threads();
// Number of cores this process may use (sched affinity), at least 1.
int available_cores();
// "libtorch X.Y.Z, CUDA yes/no, threads N" for logs and benchmarks.
std::string describe();

}  // namespace safekey::runtime
