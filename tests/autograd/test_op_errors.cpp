// Wrong shapes or dtypes: every op throws an mt::Error naming the op, the shapes and the dtypes.
#include <catch2/catch.hpp>

#include "autograd/ops.h"
#include "runtime/ops.h"
#include "test_util.h"

using namespace mt;
using Catch::Contains;

namespace {
Variable var(const Shape& s, DType dt = DType::F32) {
  return Variable(Tensor::zeros(s, dt), true);
}
}  // namespace

TEST_CASE("op errors name the op and the shapes and dtypes", "[ops][errors]") {
  REQUIRE_THROWS_WITH(ag::linear(var({2, 3}), var({4, 5})),
                      Contains("linear") && Contains("f32[2,3]") && Contains("f32[4,5]"));
  REQUIRE_THROWS_WITH(ag::linear(var({2, 3}), var({4, 3}, DType::F64)), Contains("matmul") && Contains("f64[4,3]"));
  REQUIRE_THROWS_WITH(ag::layernorm(var({2, 3}), var({4}), var({4})),
                      Contains("layernorm") && Contains("weight f32[4]") && Contains("x f32[2,3]"));
  REQUIRE_THROWS_WITH(ag::layernorm(var({2, 3}), var({3}, DType::F64), var({3})),
                      Contains("layernorm") && Contains("f64[3]"));
  REQUIRE_THROWS_WITH(ag::causal_self_attention(var({2, 4, 12}), 5),
                      Contains("attention") && Contains("n_head (5)") && Contains("qkv f32[2,4,12]"));
  REQUIRE_THROWS_WITH(ag::causal_self_attention(var({2, 4, 10}), 1), Contains("attention") && Contains("[B,T,3C]"));
  REQUIRE_THROWS_WITH(ag::add(var({2, 3}), var({3, 2})), Contains("binary") && Contains("f32[3,2]"));
  REQUIRE_THROWS_WITH(ag::gelu(var({2}, DType::BF16)), Contains("gelu") && Contains("bf16[2]"));
  REQUIRE_THROWS_WITH(ag::dropout(var({2}), 1.5, {}), Contains("dropout") && Contains("[0, 1)"));

  Tensor ids = Tensor::zeros({2, 3}, DType::I64);
  REQUIRE_THROWS_WITH(ag::embedding(ids, var({5, 4}), var({2, 4})),
                      Contains("embedding") && Contains("positions") && Contains("wpe f32[2,4]"));
  REQUIRE_THROWS_WITH(ag::embedding(Tensor::zeros({2, 3}, DType::F32), var({5, 4}), var({3, 4})),
                      Contains("embedding") && Contains("index dtype"));
  Tensor bad_ids = Tensor::full({2, 3}, 9, DType::I32);
  REQUIRE_THROWS_WITH(ag::embedding(bad_ids, var({5, 4}), var({3, 4})), Contains("idx[0] = 9") && Contains("[0, 5)"));

  REQUIRE_THROWS_WITH(ag::cross_entropy(var({4, 7}), Tensor::zeros({3}, DType::I64)),
                      Contains("cross_entropy") && Contains("logits f32[4,7]") && Contains("targets i64[3]"));
  REQUIRE_THROWS_WITH(ag::cross_entropy(var({2, 7}), Tensor::full({2}, 7, DType::I64)),
                      Contains("targets[0] = 7") && Contains("[0, 7)"));
  REQUIRE_THROWS_WITH(ag::cross_entropy(var({2, 7}), Tensor::zeros({2}, DType::I64), Tensor::zeros({3}, DType::F32)),
                      Contains("loss mask f32[3]"));
}

TEST_CASE("kernel-level errors: index ranges in backward, overlapping outputs", "[ops][errors]") {
  Tensor logits = Tensor::zeros({2, 4}, DType::F32), lse = Tensor::zeros({2}, DType::F32);
  Tensor dl = Tensor::full({2}, 1.0, DType::F32), dlogits = Tensor::zeros({2, 4}, DType::F32);
  Tensor bad_targets = Tensor::full({2}, 5, DType::I64);
  REQUIRE_THROWS_WITH(ops::cross_entropy_backward(logits, bad_targets, lse, dl, dlogits),
                      Contains("cross_entropy_backward") && Contains("targets[0] = 5"));
  // dx sharing memory with dy would corrupt dweight/dbias: refused.
  Tensor x = testutil::random({3, 5}, DType::F32, 1), w = Tensor::full({5}, 1.0, DType::F32);
  Tensor mean = Tensor::zeros({3}, DType::F32), rstd = Tensor::full({3}, 1.0, DType::F32);
  Tensor dy = testutil::random({3, 5}, DType::F32, 2), dw = Tensor::zeros({5}, DType::F32);
  REQUIRE_THROWS_WITH(ops::layernorm_backward(dy, x, w, mean, rstd, &dy, &dw, nullptr),
                      Contains("layernorm_backward") && Contains("output dx not overlapping dy"));
  Tensor a = testutil::random({4, 4}, DType::F32, 3);
  REQUIRE_THROWS_WITH(ops::matmul(a, false, a.narrow(0, 4), false, a), Contains("output c not overlapping"));
  REQUIRE_THROWS_WITH(ops::layernorm_backward(Tensor::scalar(1, DType::F32), Tensor::scalar(1, DType::F32), w, mean,
                                              rstd, nullptr, nullptr, nullptr),
                      Contains("layernorm_backward") && Contains("[..., C]"));
}

TEST_CASE("edge sizes: empty inner dimension, zero features, NaN-aware max", "[ops][edge]") {
  // K = 0 with beta = 0 gives zeros even where C held NaN.
  Tensor a = Tensor::empty({2, 0}, DType::F32), b = Tensor::empty({0, 3}, DType::F32);
  Tensor c = Tensor::full({2, 3}, NAN, DType::F32);
  ops::matmul(a, false, b, false, c);
  for (double v : c.to_double_vector()) REQUIRE(v == 0.0);
  // A linear layer with no input features is just its bias, and its backward runs.
  Variable x(Tensor::zeros({4, 0}, DType::F64), true), w(Tensor::zeros({3, 0}, DType::F64), true);
  Variable bias(Tensor::full({3}, 2.0, DType::F64), true);
  Variable y = ag::linear(x, w, bias);
  REQUIRE(y.shape() == Shape{4, 3});
  REQUIRE(y.value().to_double_vector()[5] == 2.0);
  current_tape().backward(y);
  REQUIRE(bias.grad().to_double_vector()[0] == 4.0);
  REQUIRE(Tensor::zeros({64, 0}, DType::F32).flatten_to_2d().shape() == Shape{64, 0});
  // Max and AbsMax propagate NaN.
  Tensor v = Tensor::from_vector(std::vector<float>{1.0f, NAN, -2.0f}, {3});
  REQUIRE(std::isnan(ops::reduce(ReduceOp::AbsMax, v)));
  REQUIRE(std::isnan(ops::reduce(ReduceOp::Max, v)));
  REQUIRE(ops::reduce(ReduceOp::AbsMax, Tensor::from_vector(std::vector<float>{1.0f, -3.0f}, {2})) == 3.0);
  REQUIRE_THROWS_WITH(Tensor::empty({int64_t(1) << 32, int64_t(1) << 32}, DType::F32),
                      Contains("more elements than fit"));
}

TEST_CASE("a masked row with an infinite loss does not make the mean NaN", "[ops][edge]") {
  Variable logits(Tensor::from_vector(std::vector<double>{0, -INFINITY, 1, 2}, {2, 2}), true);
  Tensor targets = Tensor::from_vector(std::vector<int64_t>{1, 0}, {2});
  Tensor mask = Tensor::from_vector(std::vector<double>{0, 1}, {2});
  Variable loss = ag::cross_entropy(logits, targets, mask);
  REQUIRE(std::isfinite(loss.value().item()));
  REQUIRE(loss.value().item() == Approx(std::log(std::exp(1.0) + std::exp(2.0)) - 1.0));
  current_tape().backward(loss);
  for (double g : logits.grad().to_double_vector()) REQUIRE(std::isfinite(g));
}
