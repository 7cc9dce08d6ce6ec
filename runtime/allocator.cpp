#include "runtime/allocator.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>

#include "runtime/error.h"

namespace mt {
namespace {

class CpuAllocator final : public Allocator {
 public:
  void* allocate(size_t bytes) override {
    size_t rounded = (std::max<size_t>(bytes, 1) + kAlign - 1) / kAlign * kAlign;
    void* p = std::aligned_alloc(kAlign, rounded);
    if (!p) throw Error(detail::concat("out of host memory: could not allocate ", bytes, " bytes"));
    size_t live = live_.fetch_add(bytes) + bytes;
    size_t peak = peak_.load();
    while (live > peak && !peak_.compare_exchange_weak(peak, live)) {
    }
    count_.fetch_add(1);
    return p;
  }
  void deallocate(void* ptr, size_t bytes) override {
    std::free(ptr);
    live_.fetch_sub(bytes);
  }
  AllocatorStats stats() const override { return {live_.load(), peak_.load(), count_.load()}; }
  void reset_peak() override { peak_.store(live_.load()); }

 private:
  static constexpr size_t kAlign = 64;
  std::atomic<size_t> live_{0}, peak_{0}, count_{0};
};

Allocator* g_allocators[kNumDeviceTypes] = {nullptr, nullptr};

}  // namespace

Allocator& allocator_for(DeviceType type) {
  static CpuAllocator cpu_allocator;
  if (type == DeviceType::CPU) return g_allocators[0] ? *g_allocators[0] : cpu_allocator;
  Allocator* a = g_allocators[int(type)];
  MT_CHECK(a, "no allocator for device type ", int(type),
           ": this binary was built without that backend (rebuild with MOETRAIN_CUDA=ON)");
  return *a;
}

void set_allocator(DeviceType type, Allocator* allocator) {
  g_allocators[int(type)] = allocator;
}

}  // namespace mt
