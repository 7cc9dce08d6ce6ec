// gradcheck itself: it must catch a wrong backward, sample entries, and refuse f32 inputs.
#include <catch2/catch.hpp>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "runtime/ops.h"
#include "test_util.h"

using namespace mt;

namespace {
// y = x * x with a deliberately wrong backward (dx += x * dy instead of 2 x dy).
Variable wrong_square(const Variable& x) {
  Variable out(ops::binary(BinaryOp::Mul, x.value(), x.value()));
  if (any_requires_grad({&x})) {
    record_op("wrong_square", out, [xs = x.grad_slot(), xv = x.value()](const Tensor& dout) {
      ops::add_(xs.grad_ref(), ops::binary(BinaryOp::Mul, xv, dout));
    });
  }
  return out;
}
}  // namespace

TEST_CASE("gradcheck catches a wrong backward", "[autograd][gradcheck]") {
  Variable x(testutil::random({5}, DType::F64, 1, 0.5, 1.5), true);
  GradcheckResult r = gradcheck([](const std::vector<Variable>& v) { return wrong_square(v[0]); }, {x});
  REQUIRE_FALSE(r.ok);
  REQUIRE(r.max_rel_error == Approx(0.5).margin(1e-6));
  REQUIRE_THAT(r.summary(), Catch::Contains("FAILED"));
}

TEST_CASE("gradcheck samples entries and passes a right backward", "[autograd][gradcheck]") {
  Variable x(testutil::random({50, 8}, DType::F64, 2), true);
  Variable w(testutil::random({3, 8}, DType::F64, 3), true);
  GradcheckOptions opt;
  opt.max_entries_per_input = 10;
  GradcheckResult r = gradcheck([](const std::vector<Variable>& v) { return ag::linear(v[0], v[1]); }, {x, w}, opt);
  REQUIRE(r.ok);
  REQUIRE(r.entries_checked == 20);
}

// y = x * x whose backward writes NaN: must fail, not pass (NaN compares false to everything).
Variable nan_square(const Variable& x) {
  Variable out(ops::binary(BinaryOp::Mul, x.value(), x.value()));
  if (any_requires_grad({&x})) {
    record_op("nan_square", out, [xs = x.grad_slot()](const Tensor&) { xs.grad_ref().fill_(NAN); });
  }
  return out;
}

TEST_CASE("gradcheck fails on NaN gradients", "[autograd][gradcheck]") {
  Variable x(testutil::random({3}, DType::F64, 5), true);
  GradcheckResult r = gradcheck([](const std::vector<Variable>& v) { return nan_square(v[0]); }, {x});
  REQUIRE_FALSE(r.ok);
}

TEST_CASE("gradcheck refuses non-f64 inputs", "[autograd][gradcheck][errors]") {
  Variable x(testutil::random({3}, DType::F32, 4), true, "x");
  REQUIRE_THROWS_WITH(gradcheck([](const std::vector<Variable>& v) { return ag::gelu(v[0]); }, {x}),
                      Catch::Contains("'x'") && Catch::Contains("f32[3]") && Catch::Contains("f64"));
}
