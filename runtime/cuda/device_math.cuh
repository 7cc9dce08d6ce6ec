// Device helpers shared by the CUDA kernels: block-wide sum and max (any block size up to 1024,
// a multiple of 32). (bf16 / f16 <-> float: runtime/float16.h, shared with the host.)
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

}  // namespace mt::cuda
