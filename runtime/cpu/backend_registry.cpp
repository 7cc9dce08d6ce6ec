// The device-type -> backend table. The CPU backend is always present.
#include "runtime/backend.h"
#include "runtime/cpu/cpu_backend.h"
#include "runtime/emulated_cuda.h"
#if MOETRAIN_HAVE_CUDA
#include "runtime/cuda/cuda_backend.h"
#endif

namespace mt {
namespace {
Backend* g_backends[kNumDeviceTypes] = {nullptr, nullptr};
}

Backend& backend_for(Device device) {
  static cpu::CpuBackend cpu_backend;
  if (device.is_cpu()) return cpu_backend;
  if (device.is_cuda() && !g_backends[int(DeviceType::CUDA)] && emulation_requested_by_environment())
    emulate_cuda_on_host();
#if MOETRAIN_HAVE_CUDA
  if (device.is_cuda() && !g_backends[int(DeviceType::CUDA)]) cuda::register_cuda_backend();
#endif
  Backend* b = g_backends[int(device.type)];
  MT_CHECK(b, "no kernels for device ", device.str(), ": this binary was built without that backend");
  return *b;
}

void register_backend(DeviceType type, Backend* backend) {
  g_backends[int(type)] = backend;
}

}  // namespace mt
