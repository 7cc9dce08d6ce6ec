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

TEST_CASE("gradcheck skips probes that cross a discontinuity and reports per input", "[autograd][gradcheck]") {
  // f(x) = 3x where the caller knows of a step at x_0 = 0.5 (like a routing decision) that the
  // analytic gradient cannot see: the probe of entry 0 at -eps crosses it and must be skipped
  Variable x(Tensor::from_vector(std::vector<double>{0.5 + 1e-7, -0.3, 0.2}, {3}), true, "x");
  bool crossed = false;
  GradcheckFn fn = [&](const std::vector<Variable>& in) {
    double x0 = in[0].value().data<double>()[0];
    if ((x0 > 0.5) != (0.5 + 1e-7 > 0.5)) crossed = true;
    return ag::scale(in[0], 3.0);
  };
  GradcheckOptions o;
  o.probe_valid = [&] {
    bool ok = !crossed;
    crossed = false;
    return ok;
  };
  GradcheckResult r = gradcheck(fn, {x}, o);
  REQUIRE(r.inputs.size() == 1);
  CHECK(r.inputs[0].name == "x");
  CHECK(r.entries_skipped == 1);  // entry 0's probe at -eps crosses 0.5
  CHECK(r.inputs[0].skipped == 1);
  CHECK(r.inputs[0].checked == 2);
  CHECK(r.ok);
}
