// Device helpers shared by the CUDA kernels: block-wide sum and max (any block size up to 1024,
// a multiple of 32), a row's log-sum-exp. (bf16 / f16 <-> float: runtime/float16.h, shared with
// the host.)
#pragma once

#include <math_constants.h>

#include <cstdint>

namespace mt::cuda {

template <class T>
__device__ T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}

template <class T>
__device__ T warp_max(T v) {
  for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_down_sync(0xffffffffu, v, o));
  return v;
}

// Every thread of the block gets the block's sum (or max); `scratch` holds 32 values.
template <class T>
__device__ T block_sum(T v, T* scratch) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  T total = 0;
  for (int w = 0; w < int(blockDim.x + 31) / 32; ++w) total += scratch[w];
  return total;
}

template <class T>
__device__ T block_max(T v, T* scratch) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  T m = scratch[0];
  for (int w = 1; w < int(blockDim.x + 31) / 32; ++w) m = max(m, scratch[w]);
  return m;
}

// log sum_j exp(scale row[j]) for j < n, in f64: the block's threads share the row (every thread
// gets the result). `scratch` holds 32 values.
template <class T>
__device__ double row_logsumexp(const T* row, int64_t n, double scale, double* scratch) {
  double m = -CUDART_INF;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) m = max(m, scale * double(row[j]));
  m = block_max(m, scratch);
  double s = 0;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) s += exp(scale * double(row[j]) - m);
  return m + log(block_sum(s, scratch));
}

}  // namespace mt::cuda
