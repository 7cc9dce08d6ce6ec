// The caching device allocator: cudaMalloc (never managed memory) in blocks rounded to 512 bytes;
// freed blocks are kept by size and handed out again, so steady-state training allocates nothing.
// Registered for DeviceType::CUDA by register_cuda_backend (backend_registry.cu).
#include <map>
#include <mutex>
#include <vector>

#include "runtime/allocator.h"
#include "runtime/cuda/cuda_backend.h"
#include "runtime/cuda/cuda_check.h"

namespace mt::cuda {
namespace {

class CudaAllocator final : public Allocator {
 public:
  void* allocate(size_t bytes) override {
    size_t size = round_up(bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    void* p = nullptr;
    auto it = cache_.find(size);
    if (it != cache_.end() && !it->second.empty()) {
      p = it->second.back();
      it->second.pop_back();
    } else {
      cudaError_t err = cudaMalloc(&p, size);
      if (err != cudaSuccess) {  // out of memory: give the cache back and try once more
        (void)cudaGetLastError();
        release_cache();
        MT_CUDA_CHECK(cudaMalloc(&p, size));
      }
    }
    live_ += size;
    peak_ = std::max(peak_, live_);
    ++count_;
    return p;
  }
  void deallocate(void* ptr, size_t bytes) override {
    std::lock_guard<std::mutex> lock(mutex_);
    size_t size = round_up(bytes);
    cache_[size].push_back(ptr);
    live_ -= size;
  }
  AllocatorStats stats() const override { return {live_, peak_, count_}; }
  void reset_peak() override { peak_ = live_; }

 private:
  static size_t round_up(size_t bytes) { return (std::max<size_t>(bytes, 1) + 511) / 512 * 512; }
  void release_cache() {
    for (auto& [size, blocks] : cache_)
      for (void* p : blocks) cudaFree(p);
    cache_.clear();
  }
  std::mutex mutex_;
  std::map<size_t, std::vector<void*>> cache_;
  size_t live_ = 0, peak_ = 0, count_ = 0;
};

}  // namespace

Allocator& caching_allocator() {
  static CudaAllocator allocator;
  return allocator;
}

}  // namespace mt::cuda
