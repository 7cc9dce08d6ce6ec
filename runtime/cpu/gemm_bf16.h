// bf16 x bf16 -> f32 GEMMs on the CPU's bf16 matrix units (Intel AMX tiles, AVX512-BF16) through
// oneDNN's matmul (and, below, f32 GEMMs that add a bias row), where the build has oneDNN
// (MOETRAIN_HAVE_DNNL) and the CPU reports the units; elsewhere the operands widen to f32
// (exactly) for SGEMM. Either way every product of two bf16 values is exact in f32 and the sums
// are f32: the paths differ only in summation order.
#pragma once

#include <functional>
#include <string>

#include "runtime/backend.h"

namespace mt::cpu {

enum class Bf16GemmPath { Widened, OneDnn };

// The bf16 matrix units oneDNN can use here (its effective ISA): AMX only where the CPU has the
// tiles and the OS granted the process their state. None without oneDNN.
enum class Bf16Units { None, Avx512Bf16, Amx };
Bf16Units bf16_units();

// The path in use: oneDNN when available and the CPU has bf16 matrix units (oneDNN's effective ISA
// is avx512_core_bf16 or better), else widened. MOETRAIN_BF16_GEMM=widened|onednn forces one (onednn
// on a CPU without the units runs oneDNN's emulation: for tests).
Bf16GemmPath bf16_gemm_path();
void set_bf16_gemm_path(Bf16GemmPath path);  // tests and benchmarks: compare the paths
// One line for logs: "oneDNN 2.6.3 matmul on avx512_core_amx" or "widened to f32 for SGEMM (...)".
std::string bf16_gemm_description();

// c = alpha * op(a) op(b) + beta * c on oneDNN (a, b bf16; c f32; GemmDesc's layout and batch
// strides, a stride of 0 broadcasting). Returns false where oneDNN cannot take it (not built).
bool onednn_bf16_gemm(const GemmDesc& g, double alpha, const Tensor& a, const Tensor& b, double beta, Tensor& c);

// c [M,N] = op(a) op(b) + bias [N] in every row on oneDNN's matmul, the bias added in its kernel's
// epilogue (no pass over c of its own): a linear layer's forward. Takes f32 operands (oneDNN's f32
// matmul: 10-19% faster than OpenBLAS plus a bias pass on the model's forward shapes, 2-core Xeon)
// and bf16 ones (on the bf16 path); c and bias f32, batch 1; f32 with M a multiple of 64 (a
// dense layer's tokens, not an MoE expert's routed rows, whose every new count would build a
// primitive). Returns false where it does not take the case (not built with oneDNN, f64, batched,
// k = 0, such an M): the caller composes bias rows and a GEMM.
bool onednn_gemm_bias(const GemmDesc& g, const Tensor& a, const Tensor& b, const Tensor& bias, Tensor& c);
// Tests: off, f32 operands take the composed path (bias rows, then OpenBLAS with beta 1).
void set_f32_gemm_bias_onednn(bool on);

// The library's own plain call for c [M,N] = a [M,K] b [K,N] (row-major, bf16 -> f32) on these
// buffers, nothing of the runtime in between: the machine's bf16 GEMM reference (like a raw
// cblas_sgemm for f32). oneDNN's matmul primitive where built with it, else an empty function.
std::function<void()> raw_bf16_matmul(const Tensor& a, const Tensor& b, Tensor& c);

}  // namespace mt::cpu
