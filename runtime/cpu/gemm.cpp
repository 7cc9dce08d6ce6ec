// GEMM through CBLAS. Strided batches with many small problems run one problem per OpenMP
// thread (CBLAS then runs single-threaded inside); large problems use CBLAS's own threads.
#include "runtime/cpu/blas.h"
#include "runtime/cpu/cpu_backend.h"
#include "runtime/cpu/gemm_bf16.h"
#include "runtime/cpu/parallel.h"
#include "runtime/dispatch.h"

namespace mt::cpu {
namespace {

// Below this many multiply-adds per problem, threading inside one GEMM does not pay.
constexpr int64_t kSmallGemm = 64 * 64 * 64;

// OpenBLAS applies beta = 0 as a pass of its own over C before its kernels add the products into
// C; for a large C that pass is slower than the backend's parallel fill: the output projection's dw
// (C = [50304, 256]) ran 10-17 ms longer with beta 0 than after a 5 ms fill with beta 1, its
// forward (C = [2048, 50304]) 7 ms longer. From this many elements of C (one problem) C is filled
// here and the GEMM runs with beta 1: the same bits (the kernels add every product block to C
// either way).
constexpr int64_t kFillCFrom = int64_t(1) << 20;

}  // namespace

// a: batch x op(A) [M,K], b: batch x op(B) [K,N], c: batch x [M,N], strides in elements.
// Mixed precision (a, b bf16 or f16; c f32): bf16 runs on the CPU's bf16 matrix units through
// oneDNN where it can (runtime/cpu/gemm_bf16.h); otherwise, and for f16, the operands widen to f32
// (exactly) and multiply in f32 - the numbers of a tensor-core GEMM at SGEMM's speed. (Widening in
// cache-sized panels instead, one SGEMM per panel, measured slower on the logits' shapes: 1.0-1.4x
// the whole widening's time, OpenBLAS packing the shared operand again for every panel.)
void CpuBackend::gemm(const GemmDesc& g, double alpha, const Tensor& a, const Tensor& b, double beta, Tensor& c) {
  if (a.dtype() == DType::BF16 && g.k > 0 && bf16_gemm_path() == Bf16GemmPath::OneDnn &&
      onednn_bf16_gemm(g, alpha, a, b, beta, c))
    return;
  if (is_half_precision(a.dtype())) {
    gemm(g, alpha, a.to(DType::F32), b.to(DType::F32), beta, c);
    return;
  }
  dispatch_float(c.dtype(), "matmul", [&](auto zero) {
    using T = decltype(zero);
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* pc = c.data<T>();
    if (g.k == 0) {  // empty inner dimension: C = beta*C (CBLAS rejects lda = 0); beta = 0 writes zeros
      Tensor flat = c.reshape({-1});
      if (beta == 0.0)
        fill(flat, 0.0);
      else
        axpby(0.0, flat, beta, flat);
      return;
    }
    if (beta == 0.0 && g.batch == 1 && g.m * g.n >= kFillCFrom) {
      fill(c, 0.0);
      beta = 1.0;
    }
    int64_t lda = g.trans_a ? g.m : g.k, ldb = g.trans_b ? g.k : g.n;
    auto one = [&](int64_t i) {
      blas_gemm(g.trans_a, g.trans_b, g.m, g.n, g.k, T(alpha), pa + i * g.stride_a, lda, pb + i * g.stride_b, ldb,
                T(beta), pc + i * g.stride_c, g.n);
    };
    if (g.batch > 1 && g.m * g.n * g.k <= kSmallGemm) {
      parallel_for(g.batch, g.m * g.n * g.k, [&](int64_t b0, int64_t b1) {
        for (int64_t i = b0; i < b1; ++i) one(i);
      });
    } else {
      for (int64_t i = 0; i < g.batch; ++i) one(i);
    }
  });
}

bool CpuBackend::gemm_widens(DType operands) const {
  return operands == DType::F16 || (operands == DType::BF16 && bf16_gemm_path() == Bf16GemmPath::Widened);
}

// c [M,N] = op(a) op(b) + bias [N] in every row: oneDNN adds the bias in its GEMM's epilogue (f32,
// or bf16 on the bf16 path); elsewhere (f64, f16, no oneDNN) bias rows and then the GEMM, beta 1.
// Half-precision operands off the bf16 path (a linear layer's, small) widen whole and take f32's
// way, so bf16 without the units runs the forward GEMMs as fp32 does.
void CpuBackend::gemm_bias(const GemmDesc& g, const Tensor& a, const Tensor& b, const Tensor& bias, Tensor& c) {
  if (onednn_gemm_bias(g, a, b, bias, c)) return;
  if (is_half_precision(a.dtype()) && c.dtype() == DType::F32 && g.batch == 1 && g.k > 0) {
    Tensor a32 = a.to(DType::F32), b32 = b.to(DType::F32);
    if (!onednn_gemm_bias(g, a32, b32, bias, c)) gemm_bias_by_rows(*this, g, a32, b32, bias, c);
    return;
  }
  gemm_bias_by_rows(*this, g, a, b, bias, c);
}

}  // namespace mt::cpu
