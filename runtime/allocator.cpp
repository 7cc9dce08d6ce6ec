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
#include <unordered_map>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "runtime/error.h"

namespace mt {
namespace {

// Host memory, 64-byte aligned. Blocks from 64 KiB on are cached when freed and handed out
// again: a training step allocates the same activation sizes every time, and going back to the
// kernel for each (mmap, page faults, zeroing) cost a third of the CPU time. A request takes the
// smallest cached block of its size up to 1/8 larger (an MoE step's expert blocks change size
// from step to step by a few rows: an exact-size cache missed them, and each miss faulted in
// fresh, zeroed pages). The cache holds at most kMaxCached bytes; stats() counts the bytes asked
// for, live.
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
      for (auto it = cache_.lower_bound(rounded); it != cache_.end() && it->first <= rounded + rounded / 8; ++it) {
        if (it->second.empty()) continue;
        p = it->second.back();
        it->second.pop_back();
        cached_bytes_ -= it->first;
        break;
      }
      if (!p && (p = allocate_new(rounded))) capacity_[p] = rounded;
    } else {
      p = allocate_new(rounded);
    }
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
    if (round_up(bytes) >= kCacheFrom) {
      std::lock_guard<std::mutex> lock(mutex_);
      auto block = capacity_.find(ptr);
      size_t capacity = block->second;  // the block's own size, maybe above this request's
      if (cached_bytes_ + capacity <= kMaxCached) {
        cache_[capacity].push_back(ptr);
        cached_bytes_ += capacity;
        return;
      }
      capacity_.erase(block);
    }
    std::free(ptr);
  }
  AllocatorStats stats() const override { return {live_.load(), peak_.load(), count_.load()}; }
  void reset_peak() override { peak_.store(live_.load()); }

 private:
  static constexpr size_t kAlign = 64, kCacheFrom = size_t(64) << 10, kMaxCached = size_t(4) << 30;
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
  std::map<size_t, std::vector<void*>> cache_;  // free blocks by size
  std::unordered_map<void*, size_t> capacity_;  // every large block's size, handed out or cached
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
