// Every op of the table (op_cases.cpp) on every backend built, in f32 and f64:
//   forward  == naive f64 reference   (f32: 2e-5 relative to the output's scale; f64: 1e-11)
//   backward == central differences   (gradcheck in f64, max relative error <= 1e-6)
#include <catch2/catch.hpp>

#include "autograd/gradcheck.h"
#include "autograd/tape.h"
#include "op_cases.h"
#include "test_util.h"

using namespace mt;
using testops::OpCase;

TEST_CASE("ops forward matches the naive reference in f32 and f64", "[ops][forward]") {
  for (const OpCase& c : testops::op_cases()) {
    for (DType dt : {DType::F32, DType::F64}) {
      DYNAMIC_SECTION(c.op << " " << c.shape << " " << dtype_name(dt)) {
        std::vector<Variable> in = c.inputs(dt);
        std::vector<Tensor> values;
        for (const Variable& v : in) values.push_back(v.value());
        std::vector<double> want = c.reference(values);
        Variable out = c.forward(in);
        REQUIRE(out.dtype() == dt);
        std::vector<double> got = out.value().to_double_vector();
        REQUIRE(got.size() == want.size());
        double tol = dt == DType::F32 ? 2e-5 : 1e-11;
        INFO("max |got - want| = " << testutil::max_abs_diff(got, want));
        REQUIRE(testutil::max_abs_diff(got, want) <= tol * std::max(1.0, testutil::max_abs(want)));
        current_tape().clear();
      }
    }
  }
}

TEST_CASE("ops hand-written backward matches finite differences in f64", "[ops][gradcheck]") {
  for (const OpCase& c : testops::op_cases()) {
    DYNAMIC_SECTION(c.op << " " << c.shape) {
      std::vector<Variable> in = c.inputs(DType::F64);
      GradcheckResult r = gradcheck(c.forward, in);
      INFO(r.summary());
      REQUIRE(r.entries_checked > 0);
      REQUIRE(r.ok);
      REQUIRE(r.max_rel_error <= 1e-6);
    }
  }
}

TEST_CASE("ops f32 backward agrees with the f64 backward", "[ops][backward]") {
  for (const OpCase& c : testops::op_cases()) {
    DYNAMIC_SECTION(c.op << " " << c.shape) {
      std::vector<std::vector<double>> grads[2];
      int slot = 0;
      for (DType dt : {DType::F64, DType::F32}) {
        std::vector<Variable> in = c.inputs(dt);
        Variable out = c.forward(in);
        current_tape().backward(out, nullptr);
        for (const Variable& v : in)
          if (v.requires_grad()) grads[slot].push_back(v.grad().to_double_vector());
        ++slot;
      }
      for (size_t i = 0; i < grads[0].size(); ++i)
        REQUIRE(testutil::max_abs_diff(grads[0][i], grads[1][i]) <=
                1e-4 * std::max(1.0, testutil::max_abs(grads[0][i])));
    }
  }
}
