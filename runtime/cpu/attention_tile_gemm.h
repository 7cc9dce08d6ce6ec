// The small GEMMs of the fused attention kernel (runtime/cpu/attention.cpp), on register-blocked
// micro-kernels: one of their dimensions is the head size D = 32..128 or a 64-row query block,
// where CBLAS spends more time in its set-up and packing than in arithmetic.
//
//   C[m,n] (+)= alpha * sum_k A(i,k) B(k,j)     i < m, j < n
//   f32/f64:  A(i,k) = a[i*rs + k*cs] (any strides: a row-major matrix or a transposed one),
//             B(k,j) = b[k*ldb + j], C row-major with ldc
//   bf16:     the operands as AVX512-BF16 consumes them, in pairs along k:
//             A(i,k) = a[i*rs + (k/2)*cs + k%2], B(k,j) = b[(k/2)*ldb + 2*j + k%2] ("VNNI" layout);
//             C and alpha f32. Every product of two bf16 values is exact in f32, sums are f32.
//
// A causal Region skips what the causal mask zeroes (off = the block's first query row):
//   ColsToRow  C[r, j] only for j <= off + r          (scores: rows are queries, columns keys)
//   KToRow     the sum over k only for k <= off + i   (P V and dS K: k runs over keys)
//   KFromRow   the sum over k only for off + k >= i   (P^T dO and dS^T Q: rows are keys, k queries)
// at the granularity of a micro-tile, so the caller's operands must hold zeros (not garbage) in the
// causally masked entries they still touch. C is written tile by tile; skipped tiles of C are left
// as they were. For bf16 the k range of a tile is widened to even bounds: operands hold zeros there.
//
// Micro-kernels: AVX-512 (f32), AVX512-BF16 and AMX (bf16), picked at run time from the CPU's
// cpuid, with portable loops elsewhere (and for f64). Each C entry's sum runs in a fixed order: results are
// deterministic and independent of the thread count.
#pragma once

#include <cstdint>

namespace mt::cpu::attn {

enum class Causal { None, ColsToRow, KToRow, KFromRow };
struct Region {
  Causal kind = Causal::None;
  int64_t off = 0;
};

// A(i, k) at p[i*rs + k*cs] (f32/f64), or the pair (i, 2q), (i, 2q+1) at p[i*rs + q*cs] (bf16).
template <class T>
struct StridedA {
  const T* p;
  int64_t rs, cs;
};

// What a tile writes from its sums acc(i, j) while they are still in registers (without
// accumulate; i, j: C's row and column), so the softmax's row passes need not read C again:
//   None      C = alpha * acc
//   Exp2      C = 2^(alpha * acc - v[i])               P from the base-2 scores and lse (backward)
//   Grad      C = x[i*ldx + j] * (alpha * acc - v[i])  dS = P * (dP - delta)
//   RowScale  C = alpha * acc * v[i]                   the output rows' 1/sum (forward)
//   RowMax    C = alpha * acc, and lanes[16 i + j % 16] = max(itself, C(i, j)) over the columns
//             j <= region.off + i (ColsToRow): the scores' row maxima, 16 lanes a row
//   Exp2Sum   C = 2^(alpha * acc - v[i]) as Exp2, and lanes[16 i + j % 16] += C(i, j) over the
//             same columns, tile by tile in the order of j: the forward's exps and their row sums
// 2^x as attention_rows.h's exp2 rows (vexp2): the values equal those of a separate pass over C.
// Columns a ColsToRow region skips are not written (the caller zeroes them).
template <class T>
struct Epilogue {
  enum Kind { None, Exp2, Grad, RowScale, RowMax, Exp2Sum } kind = None;
  const T* v = nullptr;
  const T* x = nullptr;
  int64_t ldx = 0;
  T* lanes = nullptr;
};

template <class T>
void tile_gemm(int64_t m, int64_t n, int64_t k, T alpha, StridedA<T> a, const T* b, int64_t ldb, bool accumulate, T* c,
               int64_t ldc, Region region, const Epilogue<T>& epi = {});

// The bf16 form (uint16_t bits). Needs bf16_units(); k may be odd (the operands are zero-padded
// to the next even k). On the Amx path (bf16_path()) it runs on AMX tiles, 16-row micro-tiles.
void tile_gemm_bf16(int64_t m, int64_t n, int64_t k, float alpha, StridedA<uint16_t> a, const uint16_t* b, int64_t ldb,
                    bool accumulate, float* c, int64_t ldc, Region region, const Epilogue<float>& epi = {});

// Whether the CPU has AVX512-BF16 (tile_gemm_bf16 runs it), and whether tile_gemm uses AVX-512.
// MOETRAIN_ATTENTION_KERNEL=portable in the environment turns both off (tests: the fallback paths).
bool bf16_units();
bool avx512_units();
void force_portable_kernels(bool on);  // tests: the portable paths on any CPU

// Whether the CPU has AMX-BF16 and Linux granted this process the tile state (asked here once).
bool amx_units();

// How the products of a bf16 qkv run: Amx, tile_gemm_bf16 on AMX tiles (TDPBF16PS, 8192 products an
// instruction; Intel from Sapphire Rapids); Dot, tile_gemm_bf16 on VDPBF16PS (32 products an
// instruction); Widened, the f32 micro-kernels on the operands widened exactly to f32 (two 16-lane
// FMAs a cycle). Amx where the CPU has it; else Dot where it is the faster: CPUs with AVX512-BF16
// whose FMA rate does not match it (AMD Zen 4); on Sapphire Rapids VDPBF16PS measured 104 GFLOP/s a
// core against 163 for the f32 FMA tile, so Widened there without AMX. MOETRAIN_ATTENTION_BF16=
// amx|dot|widened forces one (amx needs AMX, dot AVX512-BF16; else the next one down).
enum class Bf16Path { Widened, Dot, Amx };
Bf16Path bf16_path();
// The units a path runs the products on, for logs and benchmarks: "AMX tiles", "VDPBF16PS" or
// "the f32 FMA (operands rounded to bf16)".
const char* bf16_path_units(Bf16Path path);
void set_bf16_path(Bf16Path path);  // tests and benchmarks: compare the paths
void reset_bf16_path();             // back to the CPU's (and the environment's) choice

}  // namespace mt::cpu::attn
