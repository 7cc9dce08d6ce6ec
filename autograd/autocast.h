// Mixed precision for the GEMMs (precision: bf16 | fp16). Inside an Autocast scope every
// ag::linear multiplies 16-bit operands with f32 accumulation into an f32 result:
//   forward   y [N,out] = lo(x) lo(w)^T (+ b, f32)          lo = round to bf16 (or f16)
//   backward  dx += lo(dy) lo(w);  dw += lo(dy)^T lo(x);  db += sum_n dy   (dx, dw f32)
// The saved activation is lo(x) (half the memory of x; as much as x where the GEMMs widen lo and
// lo(x) is held in f32: ops::rounded_operand_dtype). The weights' 16-bit copy comes from the
// parameter registry, refreshed once when the scope opens (after the optimizer has updated the
// f32 master weights); other operands (activations, gradients, a teacher's weights) are rounded
// where they are used. Everything else - LayerNorm, softmax, attention, GELU, the router's gate
// (FullPrecision below), the losses, the optimizer and its state - stays in f32. f64 values (the
// gradchecks) are never cast.
#pragma once

#include "autograd/parameters.h"

namespace mt::ag {

class Autocast {
 public:
  // compute: BF16 or F16 (F32 opens a scope that changes nothing). weights: the model whose
  // 16-bit weight copy to refresh and use (nullptr: round every operand where it is used).
  explicit Autocast(DType compute, ParameterRegistry* weights = nullptr);
  ~Autocast();
  Autocast(const Autocast&) = delete;
  Autocast& operator=(const Autocast&) = delete;

 private:
  DType previous_dtype_;
  const ParameterRegistry* previous_weights_;
};

// Suspends autocast for its lifetime (the MoE gate computes its logits in f32, as DeepSpeed).
class FullPrecision {
 public:
  FullPrecision();
  ~FullPrecision();
  FullPrecision(const FullPrecision&) = delete;
  FullPrecision& operator=(const FullPrecision&) = delete;

 private:
  DType previous_;
};

// The GEMM operand dtype of the current scope: F32 outside any scope.
DType autocast_dtype();
// t as a GEMM operand rounded to `lo`: the registry's copy when t is a packed parameter's value,
// else t rounded to lo; held in ops::rounded_operand_dtype(lo): lo itself, or f32 holding lo's
// values where the GEMMs would widen lo anyway (a CPU without bf16 units, f16 on the CPU).
Tensor autocast_operand(const Tensor& t, DType lo);

}  // namespace mt::ag
