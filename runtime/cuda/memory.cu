// fill and copy (with dtype conversion), one thread per element (runtime/cpu/memory.cpp).
//   fill  x any shape and float dtype: x[i] = value, rounded to x's dtype
//   copy  src -> dst, same numel: host <-> device and device <-> device, converting float dtypes
//         (f32, f64, bf16, f16; round to nearest even, as the CPU); integers only into their own dtype
#include "runtime/cuda/cuda_backend.h"
#include "runtime/cuda/cuda_check.h"
#include "runtime/float16.h"

namespace mt::cuda {
namespace {

// Element i of a float tensor of any storage type (f32, f64, bf16, f16), as double; and the store
// back (rounding to nearest even, as the CPU).
__device__ double load(const void* p, DType t, int64_t i) {
  switch (t) {
    case DType::F32:
      return double(static_cast<const float*>(p)[i]);
    case DType::F64:
      return static_cast<const double*>(p)[i];
    case DType::F16:
      return double(half_bits_to_float(static_cast<const uint16_t*>(p)[i]));
    default:
      return double(bf16_bits_to_float(static_cast<const uint16_t*>(p)[i]));
  }
}
__device__ void store(void* p, DType t, int64_t i, double v) {
  switch (t) {
    case DType::F32:
      static_cast<float*>(p)[i] = float(v);
      break;
    case DType::F64:
      static_cast<double*>(p)[i] = v;
      break;
    case DType::F16:
      static_cast<uint16_t*>(p)[i] = float_to_half_bits(float(v));
      break;
    default:
      static_cast<uint16_t*>(p)[i] = float_to_bf16_bits(float(v));
      break;
  }
}

__global__ void convert_kernel(const void* src, DType st, void* dst, DType dt, int64_t n) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) store(dst, dt, i, load(src, st, i));
}

__global__ void fill_kernel(void* x, DType t, int64_t n, double v) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) store(x, t, i, v);
}

}  // namespace

void CudaBackend::fill(Tensor& x, double value) {
  int64_t n = x.numel();
  if (n == 0) return;
  fill_kernel<<<blocks_for(n), 256>>>(x.raw(), x.dtype(), n, value);
  MT_CUDA_LAUNCHED();
}

// Host <-> device and device <-> device, converting float dtypes (integers must match).
void CudaBackend::copy(const Tensor& src, Tensor& dst) {
  int64_t n = src.numel();
  if (n == 0) return;
  bool same = src.dtype() == dst.dtype();
  MT_CHECK(same || (is_floating(src.dtype()) && is_floating(dst.dtype())), "copy: ", src.str(), " into ", dst.str(),
           ": integer tensors copy only into their own dtype");
  if (src.device().is_cpu() && dst.device().is_cpu()) {  // (not ours, but harmless)
    backend_for(Device::cpu()).copy(src, dst);
    return;
  }
  if (src.device().is_cpu()) {  // host -> device: convert on the host first
    Tensor host = same ? src : src.to(dst.dtype());
    MT_CUDA_CHECK(cudaMemcpy(dst.raw(), host.raw(), host.nbytes(), cudaMemcpyHostToDevice));
    return;
  }
  if (dst.device().is_cpu()) {  // device -> host: convert on the device first
    Tensor dev = src;
    if (!same) {
      dev = Tensor::empty(src.shape(), dst.dtype(), src.device());
      convert_kernel<<<blocks_for(n), 256>>>(src.raw(), src.dtype(), dev.raw(), dst.dtype(), n);
      MT_CUDA_LAUNCHED();
    }
    MT_CUDA_CHECK(cudaMemcpy(dst.raw(), dev.raw(), dev.nbytes(), cudaMemcpyDeviceToHost));
    return;
  }
  if (same) {
    MT_CUDA_CHECK(cudaMemcpy(dst.raw(), src.raw(), src.nbytes(), cudaMemcpyDeviceToDevice));
  } else {
    convert_kernel<<<blocks_for(n), 256>>>(src.raw(), src.dtype(), dst.raw(), dst.dtype(), n);
    MT_CUDA_LAUNCHED();
  }
}

}  // namespace mt::cuda
