#include "runtime/emulated_cuda.h"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>

#include "runtime/allocator.h"
#include "runtime/backend.h"
#include "runtime/cpu/cpu_backend.h"
#include "runtime/error.h"

namespace mt {
namespace {

bool g_emulated = false;
thread_local int t_access_depth = 0;

// The CPU kernels for tensors in emulated device memory; copies cross "devices" as host memcpy.
class EmulatedCudaBackend final : public cpu::CpuBackend {
 public:
  const char* name() const override { return "cuda (emulated on the host)"; }
  void copy(const Tensor& src, Tensor& dst) override { copy_host_memory(src, dst); }
};

}  // namespace

void emulate_cuda_on_host() {
  static std::once_flag once;
  std::call_once(once, [] {
    static std::unique_ptr<Allocator> allocator = make_host_allocator();
    static EmulatedCudaBackend backend;
    set_allocator(DeviceType::CUDA, allocator.get());
    register_backend(DeviceType::CUDA, &backend);
    g_emulated = true;
  });
}

bool cuda_emulated() {
  return g_emulated;
}

bool emulation_requested_by_environment() {
  const char* v = std::getenv("MOETRAIN_EMULATE_CUDA");
  return v && std::strcmp(v, "1") == 0;
}

DeviceAccessScope::DeviceAccessScope() {
  ++t_access_depth;
}

DeviceAccessScope::~DeviceAccessScope() {
  --t_access_depth;
}

void check_host_access(Device device) {
  MT_CHECK(!g_emulated || device.is_cpu() || t_access_depth > 0, "host code touched the memory of a tensor on ",
           device.str(), " outside a kernel call (on a GPU this reads device memory from the host): copy it with ",
           ".to(Device::cpu()) first");
}

}  // namespace mt
