#include "safekey/tensor/memory_meter.h"

#include <c10/core/Allocator.h>
#include <c10/util/ThreadLocalDebugInfo.h>
#include <torch/version.h>

#include <algorithm>
#include <atomic>

namespace safekey::tensor {

namespace {

// libtorch 2.x reports the totals as size_t, 1.x as int64_t.
#if TORCH_VERSION_MAJOR >= 2
using Total = size_t;
#else
using Total = int64_t;
#endif

struct Reporter : public c10::MemoryReportingInfoBase {
  std::atomic<int64_t> current{0}, peak{0};
  void reportMemoryUsage(void* /*ptr*/, int64_t alloc_size, Total /*total_allocated*/, Total /*total_reserved*/,
                         c10::Device device) override {
    if (!device.is_cpu()) return;
    const int64_t now = current.fetch_add(alloc_size) + alloc_size;
    int64_t p = peak.load();
    while (now > p && !peak.compare_exchange_weak(p, now)) {
    }
  }
  bool memoryProfilingEnabled() const override { return true; }
};

}  // namespace

struct CpuMemoryMeter::Impl {
  std::shared_ptr<Reporter> reporter = std::make_shared<Reporter>();
  c10::DebugInfoGuard guard{c10::DebugInfoKind::PROFILER_STATE, reporter};
};

CpuMemoryMeter::CpuMemoryMeter() : impl_(std::make_unique<Impl>()) {}
CpuMemoryMeter::~CpuMemoryMeter() = default;
int64_t CpuMemoryMeter::current() const { return impl_->reporter->current.load(); }
int64_t CpuMemoryMeter::peak() const { return impl_->reporter->peak.load(); }
void CpuMemoryMeter::reset_peak() { impl_->reporter->peak.store(impl_->reporter->current.load()); }

}  // namespace safekey::tensor
