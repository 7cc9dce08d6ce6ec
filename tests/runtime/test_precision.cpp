// 16-bit float storage (fp16 conversion against hand-checked bit patterns and an exhaustive
// round trip), and mixed-precision GEMM: bf16/f16 operands, f32 accumulation and result, equal
// to the f64 product of the rounded operands.
#include <Eigen/Dense>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>

#include "runtime/ops.h"
#include "test_util.h"

using namespace mt;

TEST_CASE("fp16 conversion matches IEEE binary16 bit patterns", "[runtime][precision]") {
  struct Case {
    float value;
    uint16_t bits;
  };
  for (Case c : std::vector<Case>{{0.0f, 0x0000},
                                  {-0.0f, 0x8000},
                                  {1.0f, 0x3c00},
                                  {-2.0f, 0xc000},
                                  {0.5f, 0x3800},
                                  {65504.0f, 0x7bff},                  // largest finite
                                  {65519.0f, 0x7bff},                  // below the halfway point to 2^16
                                  {65520.0f, 0x7c00},                  // rounds to infinity
                                  {1e6f, 0x7c00},                      // overflow
                                  {6.103515625e-05f, 0x0400},          // 2^-14, smallest normal
                                  {5.9604644775390625e-08f, 0x0001},   // 2^-24, smallest subnormal
                                  {2.98023223876953125e-08f, 0x0000},  // 2^-25: a tie, rounds to even (0)
                                  {4.4703483581542969e-08f, 0x0001},   // 1.5 * 2^-25 -> 2^-24
                                  {1.0f + 1.0f / 2048.0f, 0x3c00},     // a tie between 1 and 1+2^-10: even
                                  {1.0f + 3.0f / 2048.0f, 0x3c02},     // a tie, rounds up to even
                                  {3.14159265f, 0x4248}}) {
    CAPTURE(c.value);
    CHECK(float_to_half_bits(c.value) == c.bits);
  }
  CHECK(std::isinf(half_bits_to_float(0x7c00)));
  CHECK(std::isnan(half_bits_to_float(float_to_half_bits(std::numeric_limits<float>::quiet_NaN()))));
  CHECK(half_bits_to_float(0x0001) == std::ldexp(1.0f, -24));
  CHECK(half_bits_to_float(0x3555) == 0.333251953125f);
}

TEST_CASE("every finite fp16 value survives a round trip through float", "[runtime][precision]") {
  int checked = 0;
  for (uint32_t h = 0; h < 0x10000; ++h) {
    uint16_t bits = uint16_t(h);
    if ((bits & 0x7c00) == 0x7c00) continue;  // inf / NaN
    REQUIRE(float_to_half_bits(half_bits_to_float(bits)) == bits);
    ++checked;
  }
  CHECK(checked == 63488);
}

TEST_CASE("tensors convert to and from f16 and bf16", "[runtime][precision]") {
  Tensor x = Tensor::from_vector(std::vector<float>{1.0f, -0.1f, 70000.0f, 1e-8f}, {4});
  std::vector<double> h = x.to(DType::F16).to_double_vector();
  CHECK(h[0] == 1.0);
  CHECK(h[1] == double(half_bits_to_float(float_to_half_bits(-0.1f))));
  CHECK(std::isinf(h[2]));  // beyond fp16's range
  CHECK(h[3] == 0.0);       // below half the smallest subnormal
  std::vector<double> b = x.to(DType::BF16).to_double_vector();
  CHECK(b[2] == 70144.0);  // bf16 keeps float's range, 8 bits of mantissa
  CHECK(dtype_from_name("f16") == DType::F16);
  CHECK(dtype_size(DType::F16) == 2);
}

TEST_CASE("mixed-precision matmul: 16-bit operands, f32 accumulation", "[runtime][precision][gemm]") {
  for (DType lo : {DType::BF16, DType::F16}) {
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        DYNAMIC_SECTION(dtype_name(lo) << " ta" << ta << " tb" << tb) {
          int64_t m = 13, n = 9, k = 70;
          Tensor a = testutil::random({ta ? k : m, ta ? m : k}, DType::F32, 11).to(lo);
          Tensor b = testutil::random({tb ? n : k, tb ? k : n}, DType::F32, 12).to(lo);
          Tensor c = testutil::random({m, n}, DType::F32, 13);
          // reference: the f64 product of the rounded (exactly representable) operands
          Tensor ref = c.to(DType::F64);
          ops::matmul(a.to(DType::F64), ta, b.to(DType::F64), tb, ref, 0.5, 2.0);
          ops::matmul(a, ta, b, tb, c, 0.5, 2.0);
          CHECK(c.dtype() == DType::F32);
          CHECK(testutil::max_abs_diff(c.to_double_vector(), ref.to_double_vector()) < 1e-5);
        }
      }
  }
}

TEST_CASE("mixed-precision matmul refuses mismatched operands", "[runtime][precision][gemm]") {
  Tensor a = Tensor::zeros({2, 3}, DType::BF16), b16 = Tensor::zeros({3, 4}, DType::F16);
  Tensor b = Tensor::zeros({3, 4}, DType::BF16), c64 = Tensor::zeros({2, 4}, DType::F64);
  Tensor c = Tensor::zeros({2, 4}, DType::F32);
  CHECK_THROWS_WITH(ops::matmul(a, false, b16, false, c), Catch::Contains("a and b both bf16 or both f16, c f32"));
  CHECK_THROWS_WITH(ops::matmul(a, false, b, false, c64), Catch::Contains("c f32"));
  CHECK(ops::matmul(a, false, b, false).dtype() == DType::F32);
}

TEST_CASE("a tensor's f32 to bf16 conversion gives float_to_bf16_bits for every kind of value",
          "[runtime][precision]") {
  // Ties to even both ways, the largest finite values (one rounds to infinity), infinities, NaNs
  // (kept quiet), subnormals, zeros, and a stride of ordinary bit patterns.
  std::vector<uint32_t> patterns = {0x3f808000u, 0x3f818000u, 0x3f807fffu, 0x7f7fffffu, 0x7f7f7fffu,
                                    0xff7fffffu, 0x7f800000u, 0xff800000u, 0x7fc00000u, 0x7f800001u,
                                    0xffbfffffu, 0x00000001u, 0x807fffffu, 0x00000000u, 0x80000000u};
  for (uint64_t u = 0; u < (1ull << 32); u += 0x10001u * 97u) patterns.push_back(uint32_t(u));
  std::vector<float> values(patterns.size());
  std::memcpy(values.data(), patterns.data(), patterns.size() * sizeof(float));
  Tensor f = Tensor::empty({int64_t(values.size())}, DType::F32);
  std::memcpy(f.raw(), values.data(), values.size() * sizeof(float));
  Tensor b = f.to(DType::BF16);
  const uint16_t* bits = static_cast<const uint16_t*>(b.raw());
  for (size_t i = 0; i < values.size(); ++i) {
    INFO("f32 bits 0x" << std::hex << patterns[i]);
    REQUIRE(bits[i] == float_to_bf16_bits(values[i]));
  }
}
