// Tape semantics: reverse replay, accumulation, no-grad scope, clearing, dropout determinism.
#include <catch2/catch.hpp>

#include "autograd/ops.h"
#include "runtime/ops.h"
#include <omp.h>

#include "test_util.h"

using namespace mt;

TEST_CASE("backward accumulates through shared inputs and across calls", "[autograd][tape]") {
  Variable x(Tensor::from_vector(std::vector<double>{1, 2, 3}, {3}), true);
  Variable y = ag::add(ag::scale(x, 2.0), ag::scale(x, 3.0));  // y = 5x
  current_tape().backward(y, nullptr);
  REQUIRE(x.grad().to_double_vector() == std::vector<double>{5, 5, 5});
  REQUIRE(current_tape().size() == 0);
  Variable z = ag::scale(x, -1.0);
  current_tape().backward(z, nullptr);  // gradients accumulate until zeroed
  REQUIRE(x.grad().to_double_vector() == std::vector<double>{4, 4, 4});
}

TEST_CASE("no-grad scope records nothing", "[autograd][tape]") {
  Variable x(Tensor::from_vector(std::vector<double>{1, 2}, {2}), true);
  {
    NoGradGuard guard;
    Variable y = ag::scale(x, 2.0);
    REQUIRE_FALSE(y.requires_grad());
    REQUIRE(current_tape().size() == 0);
    REQUIRE_THROWS_WITH(current_tape().backward(y, nullptr), Catch::Contains("does not require a gradient"));
  }
  Variable y = ag::scale(x, 2.0);
  REQUIRE(y.requires_grad());
  REQUIRE(current_tape().size() == 1);
  current_tape().clear();
}

TEST_CASE("inputs that do not require grad get none and cost no backward", "[autograd][tape]") {
  Variable a(Tensor::from_vector(std::vector<double>{1, 2}, {2}), false);
  Variable b(Tensor::from_vector(std::vector<double>{3, 4}, {2}), true);
  Variable c = ag::add(a, b);
  current_tape().backward(c, nullptr);
  REQUIRE_FALSE(a.grad().defined());
  REQUIRE(b.grad().to_double_vector() == std::vector<double>{1, 1});
  Variable d = ag::add(a, a);  // nothing requires grad: nothing recorded
  REQUIRE(current_tape().size() == 0);
  REQUIRE_FALSE(d.requires_grad());
}

TEST_CASE("dropout is reproducible from its key and drops about p", "[autograd][dropout]") {
  Tensor ones = Tensor::full({100000}, 1.0, DType::F32);
  Variable x(ones, false);
  RngKey key = rng_key(7, 100, 3, 0);
  Variable y1 = ag::dropout(x, 0.25, key), y2 = ag::dropout(x, 0.25, key);
  std::vector<double> a = y1.value().to_double_vector(), b = y2.value().to_double_vector();
  REQUIRE(a == b);
  int64_t zeros = 0;
  for (double v : a) {
    if (v == 0.0) ++zeros;
    else REQUIRE(v == Approx(1.0 / 0.75));
  }
  REQUIRE(double(zeros) / double(a.size()) == Approx(0.25).margin(0.01));
  std::vector<double> c = ag::dropout(x, 0.25, rng_key(7, 101, 3, 0)).value().to_double_vector();
  REQUIRE(c != a);
  REQUIRE(ag::dropout(x, 0.0, key).same(x));  // p = 0: identity, no copy
}

TEST_CASE("deterministic reductions do not depend on the thread count", "[autograd][determinism]") {
  Tensor x = testutil::random({1000, 37}, DType::F32, 3);
  Tensor out1 = Tensor::zeros({37}, DType::F32), out2 = Tensor::zeros({37}, DType::F32);
  int threads = omp_get_max_threads();
  ops::sum_rows(x, out1);
  omp_set_num_threads(1);
  ops::sum_rows(x, out2);
  omp_set_num_threads(threads);
  REQUIRE(out1.to_double_vector() == out2.to_double_vector());
}
