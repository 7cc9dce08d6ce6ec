// The CPU backend: CBLAS for GEMM, OpenMP loops for the rest. Each section of the kernel list
// (runtime/backend_kernels.inc) lives in the file of its name (gemm.cpp, elementwise.cpp,
// layernorm.cpp, ...), forward and backward side by side; runtime/cuda/ mirrors these files.
#pragma once

#include "runtime/backend.h"

namespace mt::cpu {

class CpuBackend : public Backend {
 public:
  const char* name() const override { return "cpu"; }
  // f16 always; bf16 where the CPU has no bf16 units (runtime/cpu/gemm_bf16.h's widened path).
  bool gemm_widens(DType operands) const override;
  // One pass (runtime/cpu/memory.cpp): bf16's rounding bits shifted back, f16 through f16.
  void round_through(const Tensor& src, DType lo, Tensor& dst) override;

  // The copy between any two tensors in host memory (converting dtypes).
  static void copy_host_memory(const Tensor& src, Tensor& dst);

#include "runtime/backend_kernels.inc"  // every kernel, declared `override`
};

}  // namespace mt::cpu
