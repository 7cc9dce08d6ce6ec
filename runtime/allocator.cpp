#include "runtime/allocator.h"

#include "runtime/emulated_cuda.h"
#if MOETRAIN_HAVE_CUDA
#include "runtime/cuda/cuda_backend.h"
#endif

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "runtime/error.h"

namespace mt {
namespace {

// Host memory, 64-byte aligned. Large blocks (>= 1 MiB) are cached by exact size when freed and
// handed out again: a training step allocates the same activation sizes every time, and going
// back to the kernel for each (mmap, page faults, zeroing) cost a third of the CPU time. The cache
// holds at most kMaxCached bytes; stats() counts live bytes only.
class CpuAllocator final : public Allocator {
 public:
  ~CpuAllocator() override {
    for (auto& [bytes, blocks] : cache_)
      for (void* p : blocks) std::free(p);
  }
  void* allocate(size_t bytes) override {
    size_t rounded = round_up(bytes);
    void* p = nullptr;
    if (rounded >= kCacheFrom) {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = cache_.find(rounded);
      if (it != cache_.end() && !it->second.empty()) {
        p = it->second.back();
        it->second.pop_back();
        cached_bytes_ -= rounded;
      }
    }
    if (!p) p = allocate_new(rounded);
    if (!p) throw Error(detail::concat("out of host memory: could not allocate ", bytes, " bytes"));
    size_t live = live_.fetch_add(bytes) + bytes;
    size_t peak = peak_.load();
    while (live > peak && !peak_.compare_exchange_weak(peak, live)) {
    }
    count_.fetch_add(1);
    return p;
  }
  void deallocate(void* ptr, size_t bytes) override {
    live_.fetch_sub(bytes);
    size_t rounded = round_up(bytes);
    if (rounded >= kCacheFrom) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cached_bytes_ + rounded <= kMaxCached) {
        cache_[rounded].push_back(ptr);
        cached_bytes_ += rounded;
        return;
      }
    }
    std::free(ptr);
  }
  AllocatorStats stats() const override { return {live_.load(), peak_.load(), count_.load()}; }
  void reset_peak() override { peak_.store(live_.load()); }

 private:
  static constexpr size_t kAlign = 64, kCacheFrom = size_t(1) << 20, kMaxCached = size_t(4) << 30;
  static size_t round_up(size_t bytes) { return (std::max<size_t>(bytes, 1) + kAlign - 1) / kAlign * kAlign; }
  // Blocks from 2 MiB on start on a 2 MiB boundary and ask Linux for transparent huge pages on
  // their whole 2 MiB extents (the kernel's default THP mode, madvise, gives them only to regions
  // that ask; the tail stays in 4 KiB pages, so no memory is added): a 412 MB [tokens, vocab]
  // logits tensor is then ~200 TLB entries instead of ~100,000, which made the bench model's fp32
  // step 6-8% faster (docs/performance.md). The alignment's padding is never touched.
  static void* allocate_new(size_t bytes) {
    if (bytes < kHugePage) return std::aligned_alloc(kAlign, bytes);
    void* p = nullptr;
    if (posix_memalign(&p, kHugePage, bytes) != 0) return nullptr;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    madvise(p, bytes / kHugePage * kHugePage, MADV_HUGEPAGE);  // advice: a refusal changes nothing
#endif
    return p;
  }
  static constexpr size_t kHugePage = size_t(2) << 20;
  std::atomic<size_t> live_{0}, peak_{0}, count_{0};
  std::mutex mutex_;
  std::map<size_t, std::vector<void*>> cache_;
  size_t cached_bytes_ = 0;
};

Allocator* g_allocators[kNumDeviceTypes] = {nullptr, nullptr};

}  // namespace

Allocator& allocator_for(DeviceType type) {
  static CpuAllocator cpu_allocator;
  if (type == DeviceType::CPU) return g_allocators[0] ? *g_allocators[0] : cpu_allocator;
  if (type == DeviceType::CUDA && !g_allocators[int(type)] && emulation_requested_by_environment())
    emulate_cuda_on_host();
#if MOETRAIN_HAVE_CUDA
  if (type == DeviceType::CUDA && !g_allocators[int(type)]) cuda::register_cuda_backend();
#endif
  Allocator* a = g_allocators[int(type)];
  MT_CHECK(a, "no allocator for device type ", int(type),
           ": this binary was built without that backend (rebuild with MOETRAIN_CUDA=ON)");
  return *a;
}

std::unique_ptr<Allocator> make_host_allocator() {
  return std::make_unique<CpuAllocator>();
}

void set_allocator(DeviceType type, Allocator* allocator) {
  g_allocators[int(type)] = allocator;
}

}  // namespace mt
