// Device queries of runtime/device.h in a build with CUDA: the GPUs this process sees, the one it
// uses, and their peak FLOP/s. (A build without CUDA answers from runtime/device.cpp: no GPU.)
#include <cuda_runtime.h>

#include <string>

#include "runtime/cuda/cuda_backend.h"
#include "runtime/device.h"
#include "runtime/emulated_cuda.h"

namespace mt {

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

int selected_cuda_device() {
  int n = cuda_device_count();
  return n > 0 ? local_rank_from_launcher() % n : 0;
}

int64_t cuda_device_memory() {
  cudaDeviceProp prop{};
  if (cuda_device_count() == 0 || cudaGetDeviceProperties(&prop, selected_cuda_device()) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return int64_t(prop.totalGlobalMem);
}

// Dense peaks of the data-centre GPUs (NVIDIA's datasheets, no sparsity): 16-bit tensor cores,
// and f32 without TF32 (what moetrain's f32 GEMMs use).
double device_peak_tflops(Device device, DType compute) {
  if (!device.is_cuda() || cuda_emulated()) return 0.0;
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, selected_cuda_device()) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0.0;
  }
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

}  // namespace mt
