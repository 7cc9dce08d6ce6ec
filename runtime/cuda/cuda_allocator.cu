// The caching device allocator: cudaMalloc (never managed memory) in blocks rounded to 512 bytes;
// freed blocks are kept by size and handed out again, so steady-state training allocates nothing.
// Also the backend registry entry point (register_cuda_backend).
#include <map>
#include <mutex>
#include <string>
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

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

// Dense peaks of the data-centre GPUs (NVIDIA's datasheets, no sparsity): 16-bit tensor cores,
// and f32 without TF32 (what moetrain's f32 GEMMs use).
double CudaBackend::peak_tflops(DType compute) const {
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, selected_device()) != cudaSuccess) return 0.0;
  std::string name = prop.name;
  bool half = is_half_precision(compute);
  struct Peak {
    const char* name;
    double half, f32;
  };
  for (Peak p : {Peak{"H200", 989.4, 66.9}, Peak{"H100 PCIe", 756.0, 51.2}, Peak{"H100 NVL", 835.0, 60.0},
                 Peak{"H100", 989.4, 66.9}, Peak{"A100", 312.0, 19.5}})
    if (name.find(p.name) != std::string::npos) return half ? p.half : p.f32;
  return 0.0;
}

int selected_device() {
  int n = device_count();
  return n > 0 ? local_rank_from_launcher() % n : 0;
}

void register_cuda_backend() {
  static std::once_flag once;
  std::call_once(once, [] {
    int n = device_count();
    MT_CHECK(n > 0,
             "no CUDA device is visible to this process (check the driver, nvidia-smi and "
             "CUDA_VISIBLE_DEVICES)");
    // One GPU per process: the local rank's (ranks beyond the GPUs share them, and training then
    // stays with MPI instead of NCCL: train/parallel_setup.cpp). The device is set for this
    // thread: moetrain calls CUDA from one thread (OpenMP workers never do).
    MT_CUDA_CHECK(cudaSetDevice(selected_device()));
    static CudaAllocator allocator;
    static CudaBackend backend;
    set_allocator(DeviceType::CUDA, &allocator);
    register_backend(DeviceType::CUDA, &backend);
  });
}

}  // namespace mt::cuda
