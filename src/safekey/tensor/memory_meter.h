// Bytes of CPU memory libtorch allocates, counted exactly: a meter installs c10's memory-reporting
// hook (the one the profiler uses) on the calling thread, and libtorch's CPU allocator reports every
// allocation and free made on that thread while the meter lives. Used to check that loading never
// holds more than one model (plus one tensor) and to compare `train --plan` with a real run.
// Allocations made before the meter, or freed on other threads, are not counted.
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
