// All tensor memory goes through one Allocator per device type. The CPU allocator hands out
// 64-byte aligned blocks; a caching CUDA allocator plugs in with set_allocator(CUDA, ...).
// Every allocator counts live and peak bytes, so memory use can be measured (e.g. a MoS teacher).
#pragma once

#include <cstddef>
#include <memory>

#include "runtime/device.h"

namespace mt {

struct AllocatorStats {
  size_t live_bytes = 0;
  size_t peak_bytes = 0;
  size_t num_allocations = 0;
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* ptr, size_t bytes) = 0;
  virtual AllocatorStats stats() const = 0;
  virtual void reset_peak() = 0;
};

// The allocator for a device type; throws when that backend is not built into this binary.
Allocator& allocator_for(DeviceType type);
void set_allocator(DeviceType type, Allocator* allocator);
// A new host-memory allocator like the CPU's (for a device emulated on the host: emulated_cuda.h).
std::unique_ptr<Allocator> make_host_allocator();

}  // namespace mt
