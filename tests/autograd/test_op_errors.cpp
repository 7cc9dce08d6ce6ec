// Wrong shapes or dtypes: every op throws an mt::Error naming the op, the shapes and the dtypes.
#include <catch2/catch.hpp>

#include "autograd/ops.h"
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
