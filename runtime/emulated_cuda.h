// A CUDA device emulated on the host, for testing the device code paths on machines without a
// GPU (CI, this project's build machine). Tensors on Device::cuda() live in host memory and run
// the CPU kernels, so a run on the emulated device computes exactly what the CPU run computes;
// but host code that touches their memory outside a kernel call (a missing .to(Device::cpu()),
// an index table left on the host, a pointer read on the wrong side) throws, naming the tensor.
// What it cannot see: the CUDA kernels themselves (tests/cuda runs those on a GPU).
//
// Enabled by emulate_cuda_on_host() (tests), or for a whole process by MOETRAIN_EMULATE_CUDA=1
// in the environment (the first use of Device::cuda() then registers it instead of the real
// backend).
#pragma once

#include "runtime/device.h"

namespace mt {

void emulate_cuda_on_host();  // idempotent; before the real CUDA backend is first used
bool cuda_emulated();
bool emulation_requested_by_environment();  // MOETRAIN_EMULATE_CUDA=1

// While alive on this thread, device memory may be touched: backend (kernel) calls open one.
class DeviceAccessScope {
 public:
  DeviceAccessScope();
  ~DeviceAccessScope();
  DeviceAccessScope(const DeviceAccessScope&) = delete;
  DeviceAccessScope& operator=(const DeviceAccessScope&) = delete;
};

// Throws when the emulated device's memory is touched by host code outside a kernel call.
void check_host_access(Device device);

}  // namespace mt
