// The CUDA entry of the device-type -> backend table (runtime/cpu/backend_registry.cpp): on the
// first use of Device::cuda(), select this process's GPU and register the caching allocator and
// the CUDA backend.
#include <mutex>

#include "runtime/cuda/cuda_backend.h"
#include "runtime/cuda/cuda_check.h"
#include "runtime/device.h"

namespace mt::cuda {

void register_cuda_backend() {
  static std::once_flag once;
  std::call_once(once, [] {
    MT_CHECK(cuda_device_count() > 0,
             "no CUDA device is visible to this process (check the driver, nvidia-smi and "
             "CUDA_VISIBLE_DEVICES)");
    // One GPU per process: the local rank's (ranks beyond the GPUs share them, and training then
    // stays with MPI instead of NCCL: train/parallel_setup.cpp). The device is set for this
    // thread: moetrain calls CUDA from one thread (OpenMP workers never do).
    MT_CUDA_CHECK(cudaSetDevice(selected_cuda_device()));
    static CudaBackend backend;
    set_allocator(DeviceType::CUDA, &caching_allocator());
    register_backend(DeviceType::CUDA, &backend);
  });
}

}  // namespace mt::cuda
