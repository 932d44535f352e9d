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
// What the C allocator does with freed memory. libtorch takes every CPU tensor from malloc, and
// glibc hands blocks above its mmap threshold back to the system on free, so every large activation
// of a CPU training step is page-faulted in again on the next one (measured: over half of a step).
//   reuse:   freed memory stays in the process for the next allocation (no mmap'd blocks; the heap
//            is trimmed only when more than 1 GiB lies free at its top);
//   release: the C library's defaults;
//   auto:    reuse when `device` is the CPU, release otherwise (GPU runs keep host memory small).
// Returns the policy applied ("reuse" or "release"; always "release" outside glibc).
std::string set_cpu_memory(const std::string& policy, const std::string& device);
// "libtorch X.Y.Z, CUDA yes/no, threads N, cpu memory P" for logs and benchmarks.
std::string describe();

}  // namespace safekey::runtime
