// fill and copy (with dtype conversion) on host memory.
#include <cstring>
#include <type_traits>

#include "runtime/cpu/cpu_backend.h"
#include "runtime/cpu/half_convert.h"
#include "runtime/cpu/parallel.h"
#include "runtime/cpu/stream_store.h"

namespace mt::cpu {
namespace {

template <class F>
decltype(auto) dispatch_any(DType t, F&& f) {
  switch (t) {
    case DType::F32:
      return f(float{});
    case DType::F64:
      return f(double{});
    case DType::BF16:
      return f(bf16{});
    case DType::F16:
      return f(f16{});
    case DType::I32:
      return f(int32_t{});
    case DType::I64:
      return f(int64_t{});
  }
  throw Error("unknown dtype");
}

template <class T>
constexpr bool is_half_v = std::is_same_v<T, bf16> || std::is_same_v<T, f16>;

// Value conversion between any two element types; bf16 and f16 go through float.
template <class D, class S>
D convert(S v) {
  if constexpr (is_half_v<S>)
    return convert<D>(float(v));
  else if constexpr (is_half_v<D>)
    return D(float(v));
  else
    return D(v);
}

}  // namespace

void CpuBackend::fill(Tensor& x, double value) {
  dispatch_any(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    T v = convert<T>(value);
    T* p = x.data<T>();
    parallel_for(x.numel(), 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) p[i] = v;
    });
  });
}

void CpuBackend::copy(const Tensor& src, Tensor& dst) {
  MT_CHECK(src.device().is_cpu() && dst.device().is_cpu(), "cpu copy: ", src.device().str(), " -> ", dst.device().str(),
           " needs the device backend");
  copy_host_memory(src, dst);
}

void CpuBackend::copy_host_memory(const Tensor& src, Tensor& dst) {
  if (src.dtype() == dst.dtype()) {
    if (src.raw() != dst.raw()) std::memmove(dst.raw(), src.raw(), src.nbytes());  // views may overlap
    return;
  }
  dispatch_any(src.dtype(), [&](auto szero) {
    using S = decltype(szero);
    dispatch_any(dst.dtype(), [&](auto dzero) {
      using D = decltype(dzero);
      const S* s = src.data<S>();
      D* d = dst.data<D>();
      auto convert_into = [](const S* from, D* to, int64_t n) {
        if constexpr (std::is_same_v<S, float> && std::is_same_v<D, bf16>)
          round_into(from, to, n);
        else
          for (int64_t i = 0; i < n; ++i) to[i] = convert<D>(from[i]);
      };
      bool stream = worth_streaming(dst.nbytes());  // (stream_store.h)
      parallel_for(src.numel(), 1, [&](int64_t b, int64_t e) {
        if (!stream) return convert_into(s + b, d + b, e - b);
        stream_in_chunks(d + b, e - b, [&](D* chunk, int64_t i, int64_t n) { convert_into(s + b + i, chunk, n); });
        stream_fence();
      });
    });
  });
}

// src [n] f32 -> dst [n] f32 = src rounded to lo and widened back (dst may be src: element by
// element, each read before it is written).
void CpuBackend::round_through(const Tensor& src, DType lo, Tensor& dst) {
  const float* s = src.data<float>();
  float* d = dst.data<float>();
  parallel_for(src.numel(), 1, [&](int64_t b, int64_t e) {
    if (lo == DType::BF16) return round_through_bf16(s + b, d + b, e - b);
    for (int64_t i = b; i < e; ++i) d[i] = float(f16(s[i]));
  });
}

}  // namespace mt::cpu
