// Device helpers shared by the CUDA kernels: block-wide sum and max (any block size up to 1024,
// a multiple of 32), and bf16 <-> float.
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

__device__ inline float bf16_to_float(uint16_t b) {
  return __uint_as_float(uint32_t(b) << 16);
}
__device__ inline uint16_t float_to_bf16(float f) {  // round to nearest even, NaN kept quiet
  uint32_t u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

}  // namespace mt::cuda
