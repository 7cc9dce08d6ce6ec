// The CPU backend: CBLAS for GEMM, OpenMP loops for the rest. Each section of the kernel list
// (runtime/backend_kernels.inc) lives in the file of its name (gemm.cpp, elementwise.cpp,
// layernorm.cpp, ...), forward and backward side by side; runtime/cuda/ mirrors these files.
#pragma once

#include "runtime/backend.h"

namespace mt::cpu {

class CpuBackend : public Backend {
 public:
  const char* name() const override { return "cpu"; }

  // The copy between any two tensors in host memory (converting dtypes).
  static void copy_host_memory(const Tensor& src, Tensor& dst);

#include "runtime/backend_kernels.inc"  // every kernel, declared `override`
};

}  // namespace mt::cpu
