// The vectorizable exp/tanh used by the f32 CPU kernels, against the C library.
#include <catch2/catch.hpp>
#include <cmath>

#include "runtime/cpu/vec_math.h"

using namespace mt::cpu;

TEST_CASE("vexp float is accurate to a few ulp and has exact limits", "[runtime][vecmath]") {
  double worst = 0;
  for (double x = -87.0; x <= 88.0; x += 0.001) {
    float xf = float(x);
    double want = std::exp(double(xf));
    worst = std::max(worst, std::fabs(double(vexp(xf)) - want) / want);
  }
  REQUIRE(worst < 4e-7);
  REQUIRE(vexp(-INFINITY) == 0.0f);
  REQUIRE(vexp(-100.0f) == 0.0f);
  REQUIRE(vexp(0.0f) == 1.0f);
  REQUIRE(std::isfinite(vexp(1000.0f)));
}

TEST_CASE("vexp2 float is accurate to 1e-7, exact at integers, and has exact limits", "[runtime][vecmath]") {
  // every 2^-12 over the range it keeps (all f32 inputs measured once: 7.38e-8 at worst, 0.88 ulp,
  // where the compiler fuses the polynomial's multiply-adds; 9.7e-8, 1.15 ulp, where it cannot)
  double worst = 0;
  for (int i = -126 * 4096; i < 128 * 4096; ++i) {
    float t = float(i) / 4096.0f;
    double want = std::exp2(double(t));
    worst = std::max(worst, std::fabs(double(vexp2(t)) - want) / want);
  }
  REQUIRE(worst < 1e-7);
  for (int k = -126; k <= 127; ++k) REQUIRE(vexp2(float(k)) == std::ldexp(1.0f, k));
  REQUIRE(vexp2(0.0f) == 1.0f);
  REQUIRE(vexp2(-0.0f) == 1.0f);
  REQUIRE(vexp2(std::nextafter(-126.0f, -200.0f)) == 0.0f);
  REQUIRE(vexp2(-INFINITY) == 0.0f);
  REQUIRE(vexp2(-1e30f) == 0.0f);
  REQUIRE(std::isfinite(vexp2(std::nextafter(128.0f, 0.0f))));
  REQUIRE(vexp2(std::nextafter(128.0f, 0.0f)) > 3.4e38f);
  REQUIRE(vexp2(128.0f) == INFINITY);
  REQUIRE(vexp2(1e30f) == INFINITY);
  REQUIRE(vexp2(INFINITY) == INFINITY);
  REQUIRE(std::isnan(vexp2(NAN)));
}

TEST_CASE("vtanh float matches tanh and saturates", "[runtime][vecmath]") {
  double worst = 0;
  for (double u = -20.0; u <= 20.0; u += 0.001)
    worst = std::max(worst, std::fabs(double(vtanh(float(u))) - std::tanh(u)));
  REQUIRE(worst < 3e-7);
  REQUIRE(vtanh(50.0f) == 1.0f);
  REQUIRE(vtanh(-50.0f) == -1.0f);
}

TEST_CASE("lane reductions equal plain loops", "[runtime][vecmath]") {
  std::vector<float> x(1003);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(float(i)) * 3.0f;
  double plain = 0;
  float mx = -INFINITY;
  for (float v : x) plain += v, mx = std::max(mx, v);
  REQUIRE(lane_sum<float>(int64_t(x.size()), [&](int64_t j) { return x[j]; }) == Approx(plain).epsilon(1e-6));
  REQUIRE(lane_max(x.data(), int64_t(x.size())) == mx);
  REQUIRE(lane_max(x.data(), 0) == -INFINITY);
}

// lane_max runs on the build's vector registers (GCC vector types): every length across the
// 16-lane blocks and their tail, the maximum at every position, unaligned starts, f32 and f64.
TEMPLATE_TEST_CASE("lane_max finds the maximum wherever it is", "[runtime][vecmath]", float, double) {
  std::vector<TestType> buffer(80);
  for (int64_t start = 0; start < 2; ++start)
    for (int64_t n = 1; n <= 70; ++n)
      for (int64_t at = 0; at < n; ++at) {
        TestType* x = buffer.data() + start;
        for (int64_t j = 0; j < n; ++j) x[j] = TestType(-1000 + (j * 37) % 101);  // (all below 0)
        x[at] = TestType(0.5);
        REQUIRE(lane_max(x, n) == TestType(0.5));
      }
  std::vector<TestType> low(40, TestType(-INFINITY));
  REQUIRE(lane_max(low.data(), int64_t(low.size())) == TestType(-INFINITY));
}
