// Register-blocked micro-kernels for the attention's small GEMMs (runtime/cpu/attention_tile_gemm.h).
//
// A micro-tile is C[MR <= 14, NR <= 32]: up to 14 x 2 AVX-512 accumulators (of 32 registers). Each k step loads one row
// of B (two vectors, masked at the n edge) and broadcasts MR entries of A's column k, so the tile needs no packing of
// A: A may be read along rows (rs = ld) or columns (rs = 1) alike.
#include "runtime/cpu/attention_tile_gemm.h"

#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "runtime/cpu/attention_simd.h"
#include "runtime/cpu/vec_math.h"
#include "runtime/float16.h"

// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() through, which -Wuninitialized flags once
// they are inlined into a target("avx512f") function.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace mt::cpu::attn {
namespace {

constexpr int kMR = 14, kNR = 32;

// One micro-tile: C[0:mr, 0:nr] (+)= alpha * sum_{k in [kb, ke)} A(i, k) B(k, j); a, b and c
// already point at the tile's first row / column.
template <class TA, class TC>
struct Tile {
  int64_t kb, ke;
  const TA* a;
  int64_t rs, cs;
  const TA* b;
  int64_t ldb;
  int nr;
  TC alpha;
  bool accumulate;
  TC* c;
  int64_t ldc;
  // The epilogue (header), its operands at the tile's first row (v, lanes) and entry (x); diag:
  // RowMax and Exp2Sum keep the tile's entry (i, j) where j <= diag + i.
  typename Epilogue<TC>::Kind epi = Epilogue<TC>::None;
  const TC* v = nullptr;
  const TC* x = nullptr;
  int64_t ldx = 0;
  TC* lanes = nullptr;
  int64_t diag = 0;
};

// The portable kernels' epilogue: C = alpha * acc (+ C), or the header's Epilogue.
template <class TC, class TA>
void store_portable(const Tile<TA, TC>& t, int mr, const TC (*acc)[kNR]) {
  using E = Epilogue<TC>;
  for (int i = 0; i < mr; ++i) {
    TC* ci = t.c + i * t.ldc;
    for (int j = 0; j < t.nr; ++j) {
      TC r = t.alpha * acc[i][j];
      switch (t.epi) {
        case E::None:
          ci[j] = (t.accumulate ? ci[j] : TC(0)) + r;
          break;
        case E::Exp2:
          ci[j] = vexp2(r - t.v[i]);
          break;
        case E::Grad:
          ci[j] = t.x[i * t.ldx + j] * (r - t.v[i]);
          break;
        case E::RowScale:
          ci[j] = r * t.v[i];
          break;
        case E::RowMax:
          ci[j] = r;
          if (j <= t.diag + i) t.lanes[16 * i + j % 16] = std::max(t.lanes[16 * i + j % 16], r);
          break;
        case E::Exp2Sum:
          ci[j] = vexp2(r - t.v[i]);
          if (j <= t.diag + i) t.lanes[16 * i + j % 16] += ci[j];
          break;
      }
    }
  }
}

// Portable loops (f64, and f32 on CPUs without AVX-512): the compiler vectorizes the j loop.
template <class T, int MR>
struct PortableKernel {
  static void run(const Tile<T, T>& t) {
    T acc[MR][kNR] = {};
    for (int64_t k = t.kb; k < t.ke; ++k) {
      const T* bk = t.b + k * t.ldb;
      for (int i = 0; i < MR; ++i) {
        T ai = t.a[i * t.rs + k * t.cs];
        if (t.nr == kNR)
          for (int j = 0; j < kNR; ++j) acc[i][j] += ai * bk[j];
        else
          for (int j = 0; j < t.nr; ++j) acc[i][j] += ai * bk[j];
      }
    }
    store_portable(t, MR, acc);
  }
};

// Portable bf16: the pairs widened to f32 (exact), products and sums in f32.
template <int MR>
struct PortableBf16Kernel {
  static void run(const Tile<uint16_t, float>& t) {
    float acc[MR][kNR] = {};
    for (int64_t q = t.kb / 2; q < t.ke / 2; ++q)
      for (int e = 0; e < 2; ++e) {
        const uint16_t* bq = t.b + q * t.ldb + e;
        float bk[kNR] = {};
        for (int j = 0; j < t.nr; ++j) bk[j] = bf16_bits_to_float(bq[2 * j]);
        for (int i = 0; i < MR; ++i) {
          float ai = bf16_bits_to_float(t.a[i * t.rs + q * t.cs + e]);
          for (int j = 0; j < kNR; ++j) acc[i][j] += ai * bk[j];
        }
      }
    store_portable(t, MR, acc);
  }
};

// Lanes of vector v (16 floats) inside the tile's nr columns.
inline __mmask16 lane_mask(int nr, int v) {
  int left = nr - 16 * v;
  return left >= 16 ? __mmask16(0xffff) : left > 0 ? __mmask16((1u << left) - 1) : __mmask16(0);
}

// The lanes of `m` up to lane `last` (a row's last causal column, relative to the vector's first).
inline __mmask16 causal_lanes(int64_t last, __mmask16 m) {
  return last >= 15 ? m : last < 0 ? __mmask16(0) : __mmask16(m & ((2u << last) - 1));
}

#define MT_AVX512 __attribute__((target("avx512f")))
#define MT_AVX512_BF16 __attribute__((target("avx512f,avx512bf16")))

// C = alpha * acc (+ C), masked at the n edge, or the header's Epilogue of kind K (a template
// argument: no branch per vector in the unrolled loops). Two shortcuts that give the same values:
// Scaled false skips the multiply where alpha is 1; Below (RowMax, Exp2Sum) a tile wholly on or
// below the causal diagonal (every column j <= diag + i) keeps every lane without a mask per row
// and vector.
template <class TA, int MR, int NV, Epilogue<float>::Kind K, bool Scaled = true, bool Below = false>
MT_AVX512 __attribute__((always_inline)) inline void store_avx512_as(const Tile<TA, float>& t, __m512 (&acc)[MR][NV]) {
  using E = Epilogue<float>;
  // The tile's fields in locals: a vector store may alias anything (__m512 is may_alias), so
  // fields read through `t` would be loaded again after every store.
  float* const c = t.c;
  const int64_t ldc = t.ldc, ldx = t.ldx, diag = t.diag;
  const bool accumulate = t.accumulate;
  const float *const v_row = t.v, *const x = t.x;
  float* const lanes = t.lanes;
  const __m512 alpha = _mm512_set1_ps(t.alpha);
  __mmask16 mask[NV];
#pragma GCC unroll 16
  for (int v = 0; v < NV; ++v) mask[v] = lane_mask(t.nr, v);
  float vi[MR];
  if constexpr (K == E::Exp2 || K == E::Grad || K == E::RowScale || K == E::Exp2Sum)
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) vi[i] = v_row[i];
#pragma GCC unroll 16
  for (int v = 0; v < NV; ++v) {
    __mmask16 m = mask[v];
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      float* ci = c + i * ldc + 16 * v;
      __m512 r = Scaled ? _mm512_mul_ps(acc[i][v], alpha) : acc[i][v];
      // C rounded as stored before the epilogue uses it: no fused multiply-add of alpha * acc with
      // what follows (the epilogues equal a pass over the stored C, bit for bit)
      asm("" : "+v"(r));
      switch (K) {
        case E::None:
          if (accumulate) r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(m, ci));
          break;
        case E::Exp2:
          r = exp2_16(_mm512_sub_ps(r, _mm512_set1_ps(vi[i])));
          break;
        case E::Grad:
          r = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i * ldx + 16 * v), _mm512_sub_ps(r, _mm512_set1_ps(vi[i])));
          break;
        case E::RowScale:
          r = _mm512_mul_ps(r, _mm512_set1_ps(vi[i]));
          break;
        case E::RowMax: {
          float* mx = lanes + 16 * i;
          __mmask16 keep = Below ? m : causal_lanes(diag + i - 16 * v, m);
          _mm512_storeu_ps(mx, _mm512_mask_max_ps(_mm512_loadu_ps(mx), keep, _mm512_loadu_ps(mx), r));
          break;
        }
        case E::Exp2Sum: {
          r = exp2_16(_mm512_sub_ps(r, _mm512_set1_ps(vi[i])));
          float* sum = lanes + 16 * i;
          __mmask16 keep = Below ? m : causal_lanes(diag + i - 16 * v, m);
          _mm512_storeu_ps(sum, _mm512_mask_add_ps(_mm512_loadu_ps(sum), keep, _mm512_loadu_ps(sum), r));
          break;
        }
      }
      _mm512_mask_storeu_ps(ci, m, r);
    }
  }
}

template <class TA, int MR, int NV>
MT_AVX512 __attribute__((always_inline)) inline void store_avx512(const Tile<TA, float>& t, __m512 (&acc)[MR][NV]) {
  using E = Epilogue<float>;
  switch (t.epi) {
    case E::None:
      return store_avx512_as<TA, MR, NV, E::None>(t, acc);
    case E::Exp2:
      return store_avx512_as<TA, MR, NV, E::Exp2>(t, acc);
    case E::Grad:  // (dP = dO V^T: alpha 1)
      if (t.alpha == 1.0f) return store_avx512_as<TA, MR, NV, E::Grad, false>(t, acc);
      return store_avx512_as<TA, MR, NV, E::Grad>(t, acc);
    case E::RowScale:
      return store_avx512_as<TA, MR, NV, E::RowScale>(t, acc);
    case E::RowMax:
      return store_avx512_as<TA, MR, NV, E::RowMax>(t, acc);
    case E::Exp2Sum:  // (the forward's scores: most tiles lie below the diagonal)
      if (t.diag >= 16 * NV - 1) return store_avx512_as<TA, MR, NV, E::Exp2Sum, true, true>(t, acc);
      return store_avx512_as<TA, MR, NV, E::Exp2Sum>(t, acc);
  }
}

// Zero accumulators and the lane masks of the tile's nr columns.
template <int MR, int NV>
MT_AVX512 __attribute__((always_inline)) inline void start_avx512(int nr, __m512 (&acc)[MR][NV],
                                                                  __mmask16 (&mask)[NV]) {
#pragma GCC unroll 16
  for (int v = 0; v < NV; ++v) mask[v] = lane_mask(nr, v);
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
}

template <int MR, int NV>
struct Avx512Kernel {
  MT_AVX512 static void run(const Tile<float, float>& t) {
    __m512 acc[MR][NV];
    __mmask16 mask[NV];
    start_avx512<MR, NV>(t.nr, acc, mask);
    const float* a = t.a + t.kb * t.cs;
    const float* b = t.b + t.kb * t.ldb;
    for (int64_t k = t.kb; k < t.ke; ++k, a += t.cs, b += t.ldb) {
      __m512 bv[NV];
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) bv[v] = _mm512_maskz_loadu_ps(mask[v], b + 16 * v);
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        __m512 ai = _mm512_set1_ps(a[i * t.rs]);
#pragma GCC unroll 16
        for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
      }
    }
    store_avx512<float, MR, NV>(t, acc);
  }
};

// VDPBF16PS: lane j of acc += A(i, 2q) B(2q, j) + A(i, 2q+1) B(2q+1, j), the pair of A broadcast
// as one 32-bit value and B's pairs interleaved (VNNI layout).
template <int MR, int NV>
struct Avx512Bf16Kernel {
  MT_AVX512_BF16 static void run(const Tile<uint16_t, float>& t) {
    __m512 acc[MR][NV];
    __mmask16 mask[NV];
    start_avx512<MR, NV>(t.nr, acc, mask);
    const uint16_t* a = t.a + (t.kb / 2) * t.cs;
    const uint16_t* b = t.b + (t.kb / 2) * t.ldb;
    for (int64_t q = t.kb / 2; q < t.ke / 2; ++q, a += t.cs, b += t.ldb) {
      __m512bh bv[NV];
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) bv[v] = (__m512bh)_mm512_maskz_loadu_epi32(mask[v], b + 32 * v);
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        int32_t pair;
        std::memcpy(&pair, a + i * t.rs, sizeof pair);
        __m512bh ai = (__m512bh)_mm512_set1_epi32(pair);
#pragma GCC unroll 16
        for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_dpbf16_ps(acc[i][v], ai, bv[v]);
      }
    }
    store_avx512<uint16_t, MR, NV>(t, acc);
  }
};

#define MT_AMX __attribute__((target("avx512f,avx512bf16,amx-tile,amx-bf16")))

// AMX (Sapphire Rapids and later): TDPBF16PS multiplies a tile of A [16 rows, 16 pairs along k] by
// a tile of B [16 pairs along k, 16 columns, 2] (the VNNI layout of the header) into a tile of C
// [16, 16] f32, 16 x 16 x 32 products an instruction. The tiles this file uses, set once per
// tile_gemm_bf16 call: 0 and 1 C's columns [0, 16) and [16, 32), 2 A, 3 and 4 B for C 0 and 1;
// every tile 16 rows of 64 bytes.
constexpr int kAmxRows = 16;
struct alignas(64) AmxConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// GCC 12's tile intrinsics are asm statements that do not tell the compiler which memory they read
// or write (_tile_loadconfig names 8 bytes of the 64): a compiler barrier before every tile load
// from memory this file wrote and after every tile store keeps those stores and loads in place.
#define MT_TILE_MEMORY_BARRIER() asm volatile("" ::: "memory")

MT_AMX void load_amx_tiles() {
  AmxConfig cfg;
  for (int t = 0; t < 5; ++t) cfg.colsb[t] = 64, cfg.rows[t] = kAmxRows;
  asm volatile("ldtilecfg %0" ::"m"(cfg));
}

MT_AMX void release_amx_tiles() {
  _tile_release();
}

// A micro-tile C[mr <= 16, nr <= 32] on AMX: the k range in steps of 16 pairs; A's tile is read in
// place where its pairs are contiguous (cs = 2) and the tile is whole, else gathered into a zeroed
// buffer (fewer rows, a k remainder); B's likewise (fewer columns, a k remainder). The sums go
// through a buffer into store_avx512: the epilogues of the AVX-512 kernels, unchanged.
template <int MR>
struct AmxKernel {
  MT_AMX static void run(const Tile<uint16_t, float>& t) {
    alignas(64) uint32_t a_buf[kAmxRows][16];
    alignas(64) uint32_t b_buf[2][16][16];
    alignas(64) float sums[kAmxRows][32];
    bool two = t.nr > 16;
    MT_TILE_MEMORY_BARRIER();
    _tile_zero(0);
    _tile_zero(1);
    int64_t q_end = t.ke / 2;
    for (int64_t q0 = t.kb / 2; q0 < q_end; q0 += 16) {
      int pairs = int(std::min<int64_t>(16, q_end - q0));
      if (MR == kAmxRows && pairs == 16 && t.cs == 2) {
        _tile_loadd(2, t.a + q0 * 2, t.rs * 2);
      } else {
        std::memset(a_buf, 0, sizeof a_buf);
        for (int i = 0; i < MR; ++i)
          for (int q = 0; q < pairs; ++q) std::memcpy(&a_buf[i][q], t.a + i * t.rs + (q0 + q) * t.cs, 4);
        MT_TILE_MEMORY_BARRIER();
        _tile_loadd(2, a_buf, 64);
      }
      for (int v = 0; v < (two ? 2 : 1); ++v) {
        int cols = std::min(16, t.nr - 16 * v);
        const uint16_t* bq = t.b + q0 * t.ldb + 32 * v;
        const void* src = bq;
        int64_t stride = t.ldb * 2;
        if (cols < 16 || pairs < 16) {
          std::memset(b_buf[v], 0, sizeof b_buf[v]);
          for (int q = 0; q < pairs; ++q) std::memcpy(b_buf[v][q], bq + q * t.ldb, size_t(cols) * 4);
          src = b_buf[v];
          stride = 64;
          MT_TILE_MEMORY_BARRIER();
        }
        if (v == 0)
          _tile_loadd(3, src, stride);
        else
          _tile_loadd(4, src, stride);
      }
      _tile_dpbf16ps(0, 2, 3);
      if (two) _tile_dpbf16ps(1, 2, 4);
    }
    _tile_stored(0, &sums[0][0], 128);
    _tile_stored(1, &sums[0][16], 128);
    MT_TILE_MEMORY_BARRIER();
    __m512 acc[MR][2];
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      acc[i][0] = _mm512_load_ps(&sums[i][0]);
      acc[i][1] = two ? _mm512_load_ps(&sums[i][16]) : _mm512_setzero_ps();
    }
    store_avx512<uint16_t, MR, 2>(t, acc);
  }
};

// Kernel<MR> for MR = 1..kMR (or rows), as a table of function pointers.
template <class TileT, template <int> class K, size_t... I>
constexpr std::array<void (*)(const TileT&), sizeof...(I)> kernel_table(std::index_sequence<I...>) {
  return {&K<int(I) + 1>::run...};
}
template <class TileT, template <int> class K, int rows = kMR>
constexpr auto kKernels = kernel_table<TileT, K>(std::make_index_sequence<rows>());

template <int MR>
using Avx512One = Avx512Kernel<MR, 1>;
template <int MR>
using Avx512Two = Avx512Kernel<MR, 2>;
template <int MR>
using Bf16One = Avx512Bf16Kernel<MR, 1>;
template <int MR>
using Bf16Two = Avx512Bf16Kernel<MR, 2>;
template <int MR>
using PortableF32 = PortableKernel<float, MR>;
template <int MR>
using PortableF64 = PortableKernel<double, MR>;

// The k range a micro-tile of rows [i, i + mr) needs (header: Region).
void k_range(Region r, int64_t i, int64_t mr, int64_t k, int64_t& kb, int64_t& ke) {
  kb = 0;
  ke = k;
  if (r.kind == Causal::KToRow) ke = std::min(k, r.off + i + mr);
  if (r.kind == Causal::KFromRow) kb = std::clamp<int64_t>(i - r.off, 0, k);
}

// Walks the micro-tiles of C; pick(mr, nr) gives the kernel of a tile. kstep 2: bf16 pairs, where
// A's k offset is (k/2)*cs and B's column offset 2*j.
template <class TA, class TC, class Pick>
void drive(int64_t m, int64_t n, int64_t k, TC alpha, StridedA<TA> a, const TA* b, int64_t ldb, bool accumulate, TC* c,
           int64_t ldc, Region region, const Epilogue<TC>& epi, int kstep, Pick&& pick, int max_rows = kMR) {
  // Row tiles of balanced heights <= max_rows (64 rows: 13, 13, 13, 13, 12 for kMR), not full ones
  // and a thin rest: tile r holds rows [m r / tiles, m (r + 1) / tiles).
  int64_t tiles = (m + max_rows - 1) / max_rows;
  if (tiles == 0) return;  // (no rows: nothing to write)
  // The row tiles' first rows, divided out once per call, not for every micro-tile (a 64-bit
  // division costs ~15-40 cycles, against a few hundred for a D = 32 tile's products)
  constexpr int64_t kKeptStarts = 64;
  int64_t starts[kKeptStarts + 1];
  for (int64_t t = 0; t <= std::min(tiles, kKeptStarts); ++t) starts[t] = m * t / tiles;
  auto row_start = [&](int64_t t) { return t <= kKeptStarts ? starts[t] : m * t / tiles; };
  auto run = [&](int64_t i, int mr, int64_t j, int nr, int64_t kb, int64_t ke) {
    Tile<TA, TC> t{kb, ke, a.p + i * a.rs, a.rs, a.cs, b + j * kstep, ldb, nr, alpha, accumulate, c + i * ldc + j, ldc};
    if (epi.kind != Epilogue<TC>::None) {
      t.epi = epi.kind;
      t.v = epi.v ? epi.v + i : nullptr;
      t.x = epi.x ? epi.x + i * epi.ldx + j : nullptr;
      t.ldx = epi.ldx;
      t.lanes = epi.lanes ? epi.lanes + 16 * i : nullptr;
      t.diag = region.off + i - j;
    }
    pick(mr, nr)(t);
  };
  if (region.kind == Causal::ColsToRow) {
    // k is the head size (scores, dP): column tiles outside, so a panel of B (k x 32) serves all
    // the row tiles from L1. Columns up to each row tile's last diagonal entry only.
    // On the diagonal's column tile the tile's upper rows end sooner: where they need fewer 16-column
    // vectors than its last row, f32/f64 run the two halves apart (at 64-row blocks and T = 256 the
    // work past the diagonal drops from 9.9% to 7.6%; bf16's AMX tiles want whole rows).
    int64_t ke = kstep == 2 ? (k + 1) & ~int64_t(1) : k;
    auto vectors = [](int64_t cols) { return (std::min<int64_t>(kNR, cols) + 15) / 16; };
    for (int64_t j = 0; j < n; j += kNR)
      for (int64_t tile = 0; tile < tiles; ++tile) {
        int64_t i = row_start(tile);
        int mr = int(row_start(tile + 1) - i), upper = mr / 2;
        int64_t n_end = std::min(n, region.off + i + mr), upper_end = std::min(n, region.off + i + upper);
        if (j >= n_end) continue;
        int nr = int(std::min<int64_t>(kNR, n_end - j));
        if (kstep == 1 && upper > 0 && vectors(std::max<int64_t>(upper_end - j, 0)) < vectors(nr)) {
          if (upper_end > j) run(i, upper, j, int(std::min<int64_t>(kNR, upper_end - j)), 0, ke);
          run(i + upper, mr - upper, j, nr, 0, ke);
        } else {
          run(i, mr, j, nr, 0, ke);
        }
      }
    return;
  }
  for (int64_t tile = 0; tile < tiles; ++tile) {
    int64_t i = row_start(tile);
    int mr = int(row_start(tile + 1) - i);
    int64_t kb, ke;
    k_range(region, i, mr, k, kb, ke);
    if (kstep == 2) kb &= ~int64_t(1), ke = (ke + 1) & ~int64_t(1);
    if (ke <= kb) kb = ke = 0;  // nothing to sum: C = 0, or unchanged when accumulating
    if (ke > kb || !accumulate)
      for (int64_t j = 0; j < n; j += kNR) run(i, mr, j, int(std::min<int64_t>(kNR, n - j)), kb, ke);
  }
}

// MOETRAIN_ATTENTION_KERNEL=portable, or force_portable_kernels(true).
std::atomic<int> g_forced{-1};
bool portable_only() {
  int f = g_forced.load();
  if (f < 0) {
    const char* env = std::getenv("MOETRAIN_ATTENTION_KERNEL");
    f = env && std::strcmp(env, "portable") == 0;
    g_forced.store(f);
  }
  return f == 1;
}

}  // namespace

bool avx512_units() {
  static const bool has = __builtin_cpu_supports("avx512f");
  return has && !portable_only();
}

bool bf16_units() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16");
  return has && !portable_only();
}

bool amx_units() {
  // The CPU's AMX-BF16, and Linux's permission for the tile state (asked once: arch_prctl
  // ARCH_REQ_XCOMP_PERM for XTILEDATA; oneDNN asks the same for the process).
  static const bool has = [] {
    if (!__builtin_cpu_supports("avx512bf16") || !__builtin_cpu_supports("amx-bf16")) return false;
    constexpr long kRequestPermission = 0x1023, kTileData = 18;
    return syscall(SYS_arch_prctl, kRequestPermission, kTileData) == 0;
  }();
  return has && !portable_only();
}

void force_portable_kernels(bool on) {
  if (on)
    g_forced.store(1);
  else
    g_forced.store(-1);
}

namespace {
std::atomic<int> g_bf16_path{-1};  // -1: the CPU's choice
}  // namespace

Bf16Path bf16_path() {
  int forced = g_bf16_path.load();
  if (forced >= 0) return Bf16Path(forced);
  static const Bf16Path chosen = [] {
    const char* env = std::getenv("MOETRAIN_ATTENTION_BF16");
    if (env && std::strcmp(env, "amx") == 0) return Bf16Path::Amx;
    if (env && std::strcmp(env, "dot") == 0) return Bf16Path::Dot;
    if (env && std::strcmp(env, "widened") == 0) return Bf16Path::Widened;
    return amx_units() ? Bf16Path::Amx : __builtin_cpu_is("amd") ? Bf16Path::Dot : Bf16Path::Widened;
  }();
  if (chosen == Bf16Path::Amx && amx_units()) return Bf16Path::Amx;
  return chosen != Bf16Path::Widened && bf16_units() ? Bf16Path::Dot : Bf16Path::Widened;
}

const char* bf16_path_units(Bf16Path path) {
  return path == Bf16Path::Amx   ? "AMX tiles"
         : path == Bf16Path::Dot ? "VDPBF16PS"
                                 : "the f32 FMA (operands rounded to bf16)";
}

void set_bf16_path(Bf16Path path) {
  g_bf16_path.store(int(path));
}

void reset_bf16_path() {
  g_bf16_path.store(-1);
}

template <>
void tile_gemm<float>(int64_t m, int64_t n, int64_t k, float alpha, StridedA<float> a, const float* b, int64_t ldb,
                      bool accumulate, float* c, int64_t ldc, Region region, const Epilogue<float>& epi) {
  bool simd = avx512_units();
  drive(m, n, k, alpha, a, b, ldb, accumulate, c, ldc, region, epi, 1, [&](int mr, int nr) {
    using TileT = Tile<float, float>;
    if (!simd) return kKernels<TileT, PortableF32>[mr - 1];
    return nr > 16 ? kKernels<TileT, Avx512Two>[mr - 1] : kKernels<TileT, Avx512One>[mr - 1];
  });
}

template <>
void tile_gemm<double>(int64_t m, int64_t n, int64_t k, double alpha, StridedA<double> a, const double* b, int64_t ldb,
                       bool accumulate, double* c, int64_t ldc, Region region, const Epilogue<double>& epi) {
  drive(m, n, k, alpha, a, b, ldb, accumulate, c, ldc, region, epi, 1,
        [](int mr, int) { return kKernels<Tile<double, double>, PortableF64>[mr - 1]; });
}

void tile_gemm_bf16(int64_t m, int64_t n, int64_t k, float alpha, StridedA<uint16_t> a, const uint16_t* b, int64_t ldb,
                    bool accumulate, float* c, int64_t ldc, Region region, const Epilogue<float>& epi) {
  if (bf16_path() == Bf16Path::Amx) {  // 16-row tiles on AMX
    load_amx_tiles();
    drive(
        m, n, k, alpha, a, b, ldb, accumulate, c, ldc, region, epi, 2,
        [](int mr, int) { return kKernels<Tile<uint16_t, float>, AmxKernel, kAmxRows>[mr - 1]; }, kAmxRows);
    release_amx_tiles();
    return;
  }
  bool simd = bf16_units();
  drive(m, n, k, alpha, a, b, ldb, accumulate, c, ldc, region, epi, 2, [&](int mr, int nr) {
    using TileT = Tile<uint16_t, float>;
    if (!simd) return kKernels<TileT, PortableBf16Kernel>[mr - 1];
    return nr > 16 ? kKernels<TileT, Bf16Two>[mr - 1] : kKernels<TileT, Bf16One>[mr - 1];
  });
}

}  // namespace mt::cpu::attn
