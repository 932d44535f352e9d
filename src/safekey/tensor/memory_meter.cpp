#include "safekey/tensor/memory_meter.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <torch/version.h>

#include <atomic>
#include <cstring>
#include <mutex>

namespace safekey::tensor {

namespace {

// libtorch 2.3 made Allocator::allocate non-const and added copy_data.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
#define SAFEKEY_ALLOCATOR_2_3 1
#endif

// Wraps libtorch's CPU allocator and counts the bytes of every live allocation, whichever thread
// allocates or frees it. Installed once (it must outlive every tensor it allocated).
class CountingCpuAllocator final : public c10::Allocator {
 public:
  explicit CountingCpuAllocator(c10::Allocator* base) : base_(base) {}
#ifdef SAFEKEY_ALLOCATOR_2_3
  c10::DataPtr allocate(size_t n) override { return wrap(base_->allocate(n), n); }
  void copy_data(void* dest, const void* src, std::size_t count) const override { std::memcpy(dest, src, count); }
#else
  c10::DataPtr allocate(size_t n) const override { return wrap(base_->allocate(n), n); }
#endif
  c10::DeleterFnPtr raw_deleter() const override { return nullptr; }

  std::atomic<int64_t> current{0}, peak{0};

 private:
  struct Context {
    c10::DataPtr inner;
    int64_t bytes;
    CountingCpuAllocator* owner;
  };
  static void release(void* ctx) {
    auto* c = static_cast<Context*>(ctx);
    c->owner->current.fetch_sub(c->bytes);
    delete c;  // frees the inner allocation
  }
  c10::DataPtr wrap(c10::DataPtr inner, size_t n) const {
    auto* self = const_cast<CountingCpuAllocator*>(this);
    const int64_t bytes = static_cast<int64_t>(n);
    const int64_t now = self->current.fetch_add(bytes) + bytes;
    int64_t p = self->peak.load();
    while (now > p && !self->peak.compare_exchange_weak(p, now)) {
    }
    void* data = inner.get();
    const auto device = inner.device();
    return c10::DataPtr(data, new Context{std::move(inner), bytes, self}, &release, device);
  }
  c10::Allocator* base_;
};

CountingCpuAllocator& counting_allocator() {
  static CountingCpuAllocator* a = [] {
    auto* alloc = new CountingCpuAllocator(c10::GetCPUAllocator());
    c10::SetCPUAllocator(alloc, /*priority=*/200);
    return alloc;
  }();
  return *a;
}

}  // namespace

struct CpuMemoryMeter::Impl {
  CountingCpuAllocator& alloc = counting_allocator();
  int64_t start = 0;
};

CpuMemoryMeter::CpuMemoryMeter() : impl_(std::make_unique<Impl>()) {
  impl_->start = impl_->alloc.current.load();
  impl_->alloc.peak.store(impl_->start);
}
CpuMemoryMeter::~CpuMemoryMeter() = default;
int64_t CpuMemoryMeter::current() const { return impl_->alloc.current.load() - impl_->start; }
int64_t CpuMemoryMeter::peak() const { return impl_->alloc.peak.load() - impl_->start; }
void CpuMemoryMeter::reset_peak() { impl_->alloc.peak.store(impl_->alloc.current.load()); }

}  // namespace safekey::tensor
