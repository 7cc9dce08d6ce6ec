// The CUDA backend: cuBLAS for GEMM, kernels of our own for the rest, written correct-first
// (one thread or block per row or element, no float atomics: every result is deterministic).
// Each section of the kernel list (runtime/backend_kernels.inc) lives in the file of its name,
// as on the CPU: runtime/cuda/layernorm.cu beside runtime/cpu/layernorm.cpp, and so on. Tensors
// live in device memory from the caching allocator (allocator.cu); copies cross host and device.
// Device queries (GPU count, the selected GPU, peak FLOP/s): runtime/device.h.
#pragma once

#include "runtime/allocator.h"
#include "runtime/backend.h"

namespace mt::cuda {

// Selects this process's GPU and registers the CUDA allocator and backend (once; called when a
// CUDA device is first used). backend_registry.cu.
void register_cuda_backend();

// The caching device allocator (allocator.cu).
Allocator& caching_allocator();

class CudaBackend final : public Backend {
 public:
  const char* name() const override { return "cuda"; }

#include "runtime/backend_kernels.inc"  // every kernel, declared `override`
};

}  // namespace mt::cuda
