// Bytes of CPU memory libtorch allocates, counted exactly: the first meter wraps libtorch's CPU
// allocator (c10::SetCPUAllocator) with one that counts every live allocation, on any thread. A
// meter reports the bytes allocated since it started and not yet freed, and their peak. Used to
// check that loading never holds more than one model (plus one tensor) and to compare `train --plan`
// with a real run. Tensors allocated before the first meter are not counted (nor their frees).
#pragma once
#include <cstdint>
#include <memory>

namespace safekey::tensor {

class CpuMemoryMeter {
 public:
  CpuMemoryMeter();
  ~CpuMemoryMeter();
  CpuMemoryMeter(const CpuMemoryMeter&) = delete;
  CpuMemoryMeter& operator=(const CpuMemoryMeter&) = delete;
  int64_t current() const;  // bytes allocated since the meter started and not yet freed
  int64_t peak() const;     // the highest `current` so far (or since reset_peak)
  void reset_peak();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace safekey::tensor
