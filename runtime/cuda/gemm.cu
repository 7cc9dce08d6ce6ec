// GEMM through cuBLAS: row-major C[i] = alpha op(A[i]) op(B[i]) + beta C[i] (runtime/backend.h's
// GemmDesc) as the column-major product C^T = op(B)^T op(A)^T, strided-batched. f32 computes in
// f32 (no TF32, so results match the CPU backend), f64 in f64, bf16 inputs in f32.
#include <mutex>

#include "runtime/cuda/cuda_backend.h"
#include "runtime/cuda/cuda_check.h"

namespace mt::cuda {
namespace {

cublasHandle_t handle() {
  static cublasHandle_t h = [] {
    cublasHandle_t x;
    MT_CUBLAS_CHECK(cublasCreate(&x));
    MT_CUBLAS_CHECK(cublasSetMathMode(x, CUBLAS_DEFAULT_MATH));
    return x;
  }();
  return h;
}

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::F32:
      return CUDA_R_32F;
    case DType::F64:
      return CUDA_R_64F;
    case DType::F16:
      return CUDA_R_16F;
    case DType::BF16:
      return CUDA_R_16BF;
    default:
      throw Error(std::string("gemm: dtype ") + dtype_name(t) + " has no cuBLAS type");
  }
}

}  // namespace

void CudaBackend::gemm(const GemmDesc& g, double alpha, const Tensor& a, const Tensor& b, double beta, Tensor& c) {
  if (g.m == 0 || g.n == 0 || g.batch == 0) return;
  if (g.k == 0) {  // C = beta C (an empty inner dimension; cuBLAS wants leading dimensions >= 1)
    if (beta == 0.0)
      fill(c, 0.0);
    else
      axpby(0.0, c, beta, c);
    return;
  }
  int64_t lda = g.trans_a ? g.m : g.k, ldb = g.trans_b ? g.k : g.n;
  bool f64 = c.dtype() == DType::F64;
  cublasComputeType_t compute = f64 ? CUBLAS_COMPUTE_64F : CUBLAS_COMPUTE_32F;
  float af = float(alpha), bf = float(beta);
  const void* pa = f64 ? static_cast<const void*>(&alpha) : &af;
  const void* pb = f64 ? static_cast<const void*>(&beta) : &bf;
  MT_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
      handle(), g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, int(g.n), int(g.m),
      int(g.k), pa, b.raw(), cuda_type(b.dtype()), int(ldb), g.stride_b, a.raw(), cuda_type(a.dtype()), int(lda),
      g.stride_a, pb, c.raw(), cuda_type(c.dtype()), int(g.n), g.stride_c, int(g.batch), compute, CUBLAS_GEMM_DEFAULT));
}

// c = op(a) op(b) + bias in every row: bias rows, then the GEMM with beta 1 (cuBLASLt's bias
// epilogue would save the row pass; not done).
void CudaBackend::gemm_bias(const GemmDesc& g, const Tensor& a, const Tensor& b, const Tensor& bias, Tensor& c) {
  gemm_bias_by_rows(*this, g, a, b, bias, c);
}

}  // namespace mt::cuda
